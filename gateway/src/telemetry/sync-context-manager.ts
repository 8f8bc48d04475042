import { ROOT_CONTEXT, type Context, type ContextManager } from "@opentelemetry/api";

/**
 * The context manager `npm start` registers when it traces: the active context lasts for the
 * synchronous extent of `context.with` only. The gateway passes every span's parent explicitly
 * (dispatch, session operations, unary RPCs), so it needs the active context only for log lines
 * written inside a span, and does not pay for AsyncLocalStorage, which on Node 20 hooks every
 * promise of the process: 7-11 µs of gateway CPU per execution with tracing on
 * (`BENCH_TRACING=1 npx tsx bench/cpu-split.ts 20000 100`, with and without it).
 *
 * An application that embeds the gateway (`startGateway`) registers its own context manager.
 * `bind` keeps a function's context across its later calls, as the API requires.
 */
export class SyncContextManager implements ContextManager {
  #current: Context = ROOT_CONTEXT;

  active(): Context {
    return this.#current;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A
  ): ReturnType<F> {
    const previous = this.#current;
    this.#current = context;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#current = previous;
    }
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== "function") return target;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    const bound = (...args: unknown[]): unknown => this.with(context, fn, undefined, ...args);
    return bound as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.#current = ROOT_CONTEXT;
    return this;
  }
}
