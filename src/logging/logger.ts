/**
 * The one logger type every part of the service takes: structured fields first, then a message,
 * as pino writes them. pino's Logger satisfies it, so the composition root hands its child
 * loggers down; library users and tests get `SILENT_LOGGER` by default.
 */
export interface Logger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** A logger that drops everything: the default wherever a logger is optional. */
export const SILENT_LOGGER: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
