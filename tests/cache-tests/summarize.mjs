// Summarises results of the HTTP cache test suite (http-cache-tests, the suite behind
// cache-tests.fyi) the way the suite itself counts them.
//
//   node summarize.mjs RESULTS.json [--name NAME] [--list] [--expected FILE]
//   node summarize.mjs --published
//
// RESULTS.json is what the suite's cli.mjs prints: { "test-id": true | [errorName, message] }.
//
// The pass count is the suite's own: a test passes when its result is `true` (the runner's
// renderTestResults in lib/display.mjs), over every test of tests/index.mjs plus
// tests/surrogate-control.mjs (as cli.mjs and the site's index.html load them) except the
// browser-only ones: 350 tests in 0.4.5. --published prints that count for the package's
// published reverse-proxy results (results/*.json, named in results/index.mjs); it must read
// Squid 243, httpd 241, ATS 217, Varnish 188, nginx 186.
//
// Every test is also put in exactly one category, using determineTestResult() from
// lib/display.mjs (what cache-tests.fyi shows for a result cell):
//   pass             a required or optimal test passed
//   yes              a behaviour check ("check" kind) answered yes (counted as a pass)
//   dep-passed       passed itself, but a test it depends on did not (the site shows it as a
//                    dependency failure; counted as a pass, as the runner counts it)
//   fail             a required test failed (a conformance failure)
//   optional-fail    an "optimal" test failed
//   no               a behaviour check answered no
//   setup-fail       the test could not set up its premise (e.g. the first response was
//                    not stored); the cache cannot be judged on it
//   harness-fail     the test errored out rather than failing an assertion (e.g. a FetchError
//                    when the cache closed the connection); the site would show a plain fail
//   retry            the cache retried a request
//   dep-fail         failed, and a test it depends on did not pass
//   untested         no result (the run stopped early, or the result file is partial)
//
// --list prints every test that does not pass, with its category, whether the suite marks it
// as a requirement (kind "required" or no kind), and the suite's failure message.
//
// --expected FILE compares the tests that do not pass with FILE (one "test-id  reason" a line;
// '#' starts a comment): it prints each test that does not pass and is not listed, and each
// listed test that passes (or that the suite does not know), and then exits 1 if there was any.

import fs from 'fs'
import path from 'path'
import { createRequire } from 'module'

import * as display from 'http-cache-tests/lib/display.mjs'
import baseTests from 'http-cache-tests/tests/index.mjs'
import surrogate from 'http-cache-tests/tests/surrogate-control.mjs'
import publishedIndex from 'http-cache-tests/results/index.mjs'

const require = createRequire(import.meta.url)
const pkgDir = path.dirname(require.resolve('http-cache-tests/package.json'))

const suites = [...baseTests, surrogate]
// The tests a shared (non-browser) cache runs, in the suite's order.
const tests = []
for (const suite of suites) {
  for (const test of suite.tests) {
    if (test.browser_only === true) continue
    tests.push({ suite: suite.id, test })
  }
}

const CATEGORIES = ['pass', 'yes', 'dep-passed', 'fail', 'optional-fail', 'no', 'setup-fail',
  'harness-fail', 'retry', 'dep-fail', 'untested']
const PASSING = new Set(['pass', 'yes', 'dep-passed'])

function isRequirement (test) {
  return test.kind === 'required' || test.kind === undefined
}

function categorise (test, results) {
  const result = results[test.id]
  const shown = display.determineTestResult(suites, test.id, results)[2]
  if (result === undefined) return 'untested'
  if (result === true) return { '✅': 'pass', Y: 'yes' }[shown] || 'dep-passed'
  switch (shown) {
    case '⚪️': return 'dep-fail'
    case '🔹': return 'setup-fail'
    case '↻': return 'retry'
    case '⁉️': return 'harness-fail'
  }
  if (Array.isArray(result) && result[0] !== 'Assertion') return 'harness-fail'
  switch (shown) {
    case '⛔️': return 'fail'
    case '⚠️': return 'optional-fail'
    case 'N': return 'no'
  }
  throw new Error(`unexpected result for ${test.id}: ${JSON.stringify(result)}`)
}

function summarise (results) {
  const counts = Object.fromEntries(CATEGORIES.map(c => [c, 0]))
  const notPassing = []
  for (const { suite, test } of tests) {
    const category = categorise(test, results)
    counts[category]++
    if (!PASSING.has(category)) {
      const result = results[test.id]
      notPassing.push({
        id: test.id,
        suite,
        category,
        kind: isRequirement(test) ? 'required' : test.kind,
        message: Array.isArray(result) ? `${result[0]}: ${result[1]}` : ''
      })
    }
  }
  const passed = tests.filter(({ test }) => results[test.id] === true).length
  return { passed, total: tests.length, counts, notPassing }
}

function countLine (counts, names) {
  return names.map(c => `${c} ${counts[c]}`).join(', ')
}

function printSummary (name, summary) {
  const { passed, total, counts } = summary
  console.log(`${name}: ${passed} of ${total} tests pass`)
  console.log(`  passing:        ${countLine(counts, ['pass', 'yes', 'dep-passed'])}`)
  console.log(`  failing:        ${countLine(counts, ['fail', 'optional-fail', 'no'])}`)
  console.log(`  not judged:     ${countLine(counts, ['setup-fail', 'harness-fail', 'retry', 'dep-fail', 'untested'])}`)
}

function printList (summary) {
  if (summary.notPassing.length === 0) return
  const width = Math.max(...summary.notPassing.map(t => t.id.length))
  console.log('  tests that do not pass (id, category, kind, message):')
  for (const t of summary.notPassing) {
    const message = t.message.replace(/\s+/g, ' ').slice(0, 140)
    console.log(`    ${t.id.padEnd(width)}  ${t.category.padEnd(13)}  ${t.kind.padEnd(8)}  ${message}`)
  }
}

function readExpected (file) {
  const expected = new Map()
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, n) => {
    const text = line.replace(/#.*/, '').trim()
    if (text === '') return
    const [id, ...reason] = text.split(/\s+/)
    if (expected.has(id)) throw new Error(`${file}:${n + 1}: ${id} is listed twice`)
    expected.set(id, reason.join(' '))
  })
  return expected
}

function checkExpected (summary, file) {
  const expected = readExpected(file)
  const known = new Set(tests.map(({ test }) => test.id))
  const failing = new Map(summary.notPassing.map(t => [t.id, t]))
  const unexpected = summary.notPassing.filter(t => !expected.has(t.id))
  const fixed = [...expected.keys()].filter(id => !failing.has(id))
  for (const t of unexpected) {
    console.log(`UNEXPECTED FAILURE  ${t.id}  (${t.category}, ${t.kind}) ${t.message.replace(/\s+/g, ' ').slice(0, 160)}`)
  }
  for (const id of fixed) {
    const why = known.has(id) ? 'now passes: remove it from the list' : 'is not a test of this suite'
    console.log(`LISTED BUT PASSING  ${id}  ${why}`)
  }
  const listed = summary.notPassing.length - unexpected.length
  console.log(`expected failures: ${listed} of ${expected.size} listed tests fail as expected, ` +
    `${unexpected.length} unexpected failure(s), ${fixed.length} listed test(s) not failing`)
  return unexpected.length === 0 && fixed.length === 0
}

function main (argv) {
  const args = { list: false, published: false }
  const files = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--list') args.list = true
    else if (a === '--published') args.published = true
    else if (a === '--name') args.name = argv[++i]
    else if (a === '--expected') args.expected = argv[++i]
    else if (a === '-h' || a === '--help') {
      console.log('usage: node summarize.mjs RESULTS.json [--name NAME] [--list] [--expected FILE]\n' +
        '       node summarize.mjs --published')
      return 0
    } else if (a.startsWith('-')) {
      console.error(`summarize.mjs: unknown option ${a}`)
      return 2
    } else files.push(a)
  }

  if (args.published) {
    for (const item of publishedIndex) {
      if (item.type !== 'rev-proxy') continue
      const results = JSON.parse(fs.readFileSync(path.join(pkgDir, 'results', item.file), 'utf8'))
      const s = summarise(results)
      console.log(`${item.name.padEnd(8)} ${item.version.padEnd(16)} ${String(s.passed).padStart(3)} of ${s.total}   ` +
        countLine(s.counts, CATEGORIES))
    }
    return 0
  }

  if (files.length !== 1) {
    console.error('summarize.mjs: give one results file (or --published); --help for usage')
    return 2
  }
  const results = JSON.parse(fs.readFileSync(files[0], 'utf8'))
  const summary = summarise(results)
  printSummary(args.name || path.basename(files[0]), summary)
  if (args.list) printList(summary)
  if (args.expected) {
    return checkExpected(summary, path.resolve(args.expected)) ? 0 : 1
  }
  return 0
}

process.exitCode = main(process.argv.slice(2))
