/** Logging shared by every folder: the one logger type, the silent default, an error's text. */
export { SILENT_LOGGER, type Logger } from "./logger.ts";
export { errorMessage } from "./error-message.ts";
