import type { FastifyBaseLogger } from 'fastify'

type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>

/**
 * Fastify's `childLoggerFactory`: the request's logger (`request.log`), made
 * only when the request logs something its level lets through.
 *
 * Fastify asks for a child logger per request to bind its `reqId`; pino then
 * builds the child's formatters and runs the redaction over the bindings
 * (log-redaction.ts) on every request, whether it logs or not: 5.6% of a hot
 * `requireUser` request at level `warn` (README, Performance). This stand-in
 * answers every pino method: a call at a disabled level returns at once, and
 * anything else creates the real child (`logger.child(bindings)`) once and
 * hands the call on. A route-level `logLevel` or `logSerializers` gets the real
 * child straight away, so its semantics are pino's own.
 */
export function lazyChildLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (!isEmpty(options) || !isPino(logger)) return logger.child(bindings, options)
  let Lazy = lazyClasses.get(logger)
  if (Lazy === undefined) {
    Lazy = lazyClassFor(logger)
    lazyClasses.set(logger, Lazy)
  }
  return new Lazy(bindings)
}

type PinoLike = FastifyBaseLogger & { levels: { values: Record<string, number> }, isLevelEnabled(level: string): boolean }
type LazyLogger = new (bindings: Bindings) => FastifyBaseLogger

const lazyClasses = new WeakMap<FastifyBaseLogger, LazyLogger>()

/** Fastify passes a route's `logLevel` and `logSerializers` as these two, and nothing else. */
function isEmpty (options: ChildLoggerOptions): boolean {
  return options.level === undefined && options.serializers === undefined
}

function isPino (logger: FastifyBaseLogger): logger is PinoLike {
  const { levels, isLevelEnabled } = logger as Partial<PinoLike>
  return typeof isLevelEnabled === 'function' && typeof levels?.values === 'object'
}

type LogMethod = (...args: unknown[]) => void

/** One class per parent logger; its prototype chain ends in the parent, so whatever is not overridden here (levels, flush, silent, version...) is the parent's. */
function lazyClassFor (parent: PinoLike): LazyLogger {
  class Lazy {
    #child: FastifyBaseLogger | undefined
    constructor (readonly lazyBindings: Bindings) {}

    real (): FastifyBaseLogger {
      this.#child ??= parent.child(this.lazyBindings)
      return this.#child
    }

    enabled (level: string): boolean {
      return this.#child === undefined ? parent.isLevelEnabled(level) : (this.#child as PinoLike).isLevelEnabled(level)
    }

    isLevelEnabled (level: string): boolean { return this.enabled(level) }
    child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger { return this.real().child(bindings, options) }
    bindings (): Bindings { return (this.real() as unknown as { bindings(): Bindings }).bindings() }
    setBindings (bindings: Bindings): void { (this.real() as unknown as { setBindings(bindings: Bindings): void }).setBindings(bindings) }
    get level (): string { return this.#child?.level ?? parent.level }
    set level (level: string) { this.real().level = level }
    get levelVal (): number { return ((this.#child ?? parent) as unknown as { levelVal: number }).levelVal }
  }
  Object.setPrototypeOf(Lazy.prototype, parent)
  for (const level of Object.keys(parent.levels.values)) {
    Object.defineProperty(Lazy.prototype, level, {
      value: function log (this: Lazy, ...args: unknown[]) {
        if (!this.enabled(level)) return
        ;(this.real() as unknown as Record<string, LogMethod>)[level]!(...args)
      },
      writable: true,
      configurable: true
    })
  }
  return Lazy as unknown as LazyLogger
}
