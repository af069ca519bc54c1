// typed-calls.ts is compiled by `npm run typecheck`, where every line after a
// `@ts-expect-error` must fail. This proves those failures are real, one by one, and
// that they come from the spec's types: with the calls typed loosely instead, every
// directive is left unused, and that fails the type check.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../../', import.meta.url))
const typeTest = join(root, 'test/client/typed-calls.ts')
const source = readFileSync(typeTest, 'utf8')
const DIRECTIVE = /^\s*\/\/ @ts-expect-error: /

const { config } = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile)
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root)

// Files are parsed once for all three compilations; a replaced file is parsed apart.
const parsed = new Map<string, ts.SourceFile>()

/** The type test's diagnostics, as [line (1-based), TS code], with some files' text replaced. */
function compile (replaced: Record<string, string>): Array<[number, number]> {
  const host = ts.createCompilerHost(options)
  host.getSourceFile = (fileName, languageVersion) => {
    const replacement = replaced[resolve(fileName)]
    if (replacement !== undefined) return ts.createSourceFile(fileName, replacement, languageVersion)
    let file = parsed.get(fileName)
    if (file === undefined) {
      const text = ts.sys.readFile(fileName)
      if (text === undefined) return undefined
      file = ts.createSourceFile(fileName, text, languageVersion)
      parsed.set(fileName, file)
    }
    return file
  }
  const program = ts.createProgram([typeTest], options, host)
  // Only the type test is checked: what it does not touch cannot make its lines fail.
  const file = program.getSourceFile(typeTest)!
  return [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]
    .map(diagnostic => [file.getLineAndCharacterOfPosition(diagnostic.start!).line + 1, diagnostic.code])
}

const lines = source.split('\n')
const directives = lines.flatMap((line, index) => DIRECTIVE.test(line) ? [index + 1] : [])

t.test('as written, it compiles: each directive meets its error', async t => {
  t.ok(directives.length >= 10)
  t.same(compile({}), [])
})

t.test('without the directives, each line after one fails to compile, and no other line', async t => {
  const bare = lines.map(line => DIRECTIVE.test(line) ? '' : line).join('\n')
  const failing = [...new Set(compile({ [typeTest]: bare }).map(([line]) => line))].sort((a, b) => a - b)
  t.same(failing, directives.map(line => line + 1))
})

t.test('with the calls typed loosely (any path, any body), every directive is unused: the type check would fail', async t => {
  const api = join(root, 'src/client/api.ts')
  const typed = readFileSync(api, 'utf8')
  const loosened: Array<[RegExp, string]> = [
    [/^export type Call = .*$/m, 'export type Call = (method: string, path: string, send: any) => Promise<any>'],
    [/^export type Body<O> = .*$/m, 'export type Body<O> = any'],
    [/^export function linkTo<.*\): string \{$/m, 'export function linkTo (base: string, path: string, params: any, query: any): string {']
  ]
  let loose = typed
  for (const [pattern, replacement] of loosened) {
    t.match(loose, pattern, `api.ts still declares ${replacement.split(' =')[0]!.split(' (')[0]}`)
    loose = loose.replace(pattern, replacement)
  }
  t.same(compile({ [api]: loose }), directives.map(line => [line, 2578]))
})
