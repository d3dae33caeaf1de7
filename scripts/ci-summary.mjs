#!/usr/bin/env node
// The last lines of a CI run: the steps that failed and, from the JSON reports vitest wrote into
// NTLS_TEST_REPORT_DIR (vitest.config.ts), each failed test with the start of its error. CI shows
// only the tail of its output; without this a failure in the first test run was out of sight.
// Usage: node scripts/ci-summary.mjs REPORT_DIR [FAILED_STEP ...]
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [reportDir, ...failedSteps] = process.argv.slice(2);
const ERROR_LINES = 8;

function reports(dir) {
  let names;
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map((name) => {
    try {
      return { name, report: JSON.parse(readFileSync(join(dir, name), 'utf8')) };
    } catch (error) {
      return { name, unreadable: String(error) };
    }
  });
}

function failures(report) {
  const found = [];
  for (const file of report.testResults ?? []) {
    const failedTests = (file.assertionResults ?? []).filter((test) => test.status === 'failed');
    for (const test of failedTests) {
      found.push({ file: file.name, test: test.fullName ?? test.title, error: (test.failureMessages ?? []).join('\n') });
    }
    // A file that failed outside any test (an import error, a hook) has its message on the file.
    if (file.status === 'failed' && failedTests.length === 0) {
      found.push({ file: file.name, test: '(the file itself)', error: file.message ?? '' });
    }
  }
  return found;
}

const lines = ['', '== CI summary =='];
lines.push(failedSteps.length === 0 ? 'every step passed' : `failed steps: ${failedSteps.join('; ')}`);
for (const { name, report, unreadable } of reports(reportDir)) {
  if (unreadable !== undefined) {
    lines.push(`${name}: unreadable report (${unreadable})`);
    continue;
  }
  const found = failures(report);
  lines.push(`${name}: ${report.numPassedTests ?? '?'} passed, ${report.numFailedTests ?? '?'} failed, ${found.length} failure(s) listed`);
  for (const failure of found) {
    lines.push(`  FAIL ${failure.file.replace(`${process.cwd()}/`, '')} > ${failure.test}`);
    for (const line of failure.error.split('\n').slice(0, ERROR_LINES)) lines.push(`       ${line}`);
  }
}
console.log(lines.join('\n'));
