// expectExact<T>()(value) compiles only when `value`'s type is exactly T (not merely assignable),
// so a declaration that widens to `any` or `unknown` fails the type tests.
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false

export function expectExact<T> (): <U>(value: U & (Equal<T, U> extends true ? unknown : never)) => void {
  return () => {}
}
