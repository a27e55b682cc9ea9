/**
 * Keeps secrets out of logs and error messages. The script key is known from the start; tokens
 * are added as the site hands them out. Every message built from something the site or the
 * network said passes through `redact`, as a second line of defence behind never putting a
 * secret into a message in the first place.
 */
export class SecretRedactor {
  readonly #secrets: string[] = [];

  /** How many recent tokens to remember (older ones have long expired). */
  constructor(private readonly keep = 16) {}

  add(secret: string | undefined): void {
    // Very short strings would redact ordinary words; real keys and tokens are long.
    if (!secret || secret.length < 6 || this.#secrets.includes(secret)) return;
    this.#secrets.push(secret);
    if (this.#secrets.length > this.keep) this.#secrets.splice(1, 1); // index 0 is the script key
  }

  readonly redact = (text: string): string => {
    let out = text;
    for (const s of this.#secrets) if (out.includes(s)) out = out.split(s).join("[redacted]");
    return out;
  };
}
