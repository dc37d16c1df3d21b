// `await using instance = …` needs Symbol.asyncDispose. Node 20.4+ defines it; older runtimes
// get the well-known symbol registered here so the SDK's classes can declare the method.
const symbols = Symbol as unknown as { asyncDispose?: symbol; dispose?: symbol };
symbols.asyncDispose ??= Symbol.for('Symbol.asyncDispose');
symbols.dispose ??= Symbol.for('Symbol.dispose');

export const asyncDispose: typeof Symbol.asyncDispose = Symbol.asyncDispose;
