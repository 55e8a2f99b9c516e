/** Expected failures of the pure object-model code. Broken invariants are assertions, not these. */

export class CoreError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
