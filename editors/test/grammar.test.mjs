// The Reqon TextMate grammar under the real VS Code engine: every example mission
// tokenizes cleanly, and the shared samples (also checked against the Pygments lexer
// by tests/editors/test_pygments.py) get the expected scopes.
//
// REQON_EXAMPLE_DIRS lists the example folders (path.delimiter-separated); the
// Python side (tests/editors/test_textmate.py) sets it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import { loadGrammar, scopesPerChar } from "./tokenize.mjs";

const grammar = await loadGrammar();
const samples = JSON.parse(readFileSync(new URL("./samples.json", import.meta.url), "utf8"));

function missionFiles(dir) {
  return readdirSync(dir, { recursive: true })
    .filter((name) => name.endsWith(".vague") || name.endsWith(".reqon"))
    .sort()
    .map((name) => join(dir, name));
}

function position(text, offset) {
  const before = text.slice(0, offset).split("\n");
  return `${before.length}:${before.at(-1).length + 1}`;
}

// Characters that are not whitespace yet carry no scope of their own, or an invalid one.
function problems(text) {
  const perChar = scopesPerChar(grammar, text);
  const found = [];
  for (let i = 0; i < text.length; i++) {
    if (/\s/.test(text[i])) continue;
    const scopes = perChar[i] ?? [];
    const bad = scopes.length < 2 ? "no scope" : scopes.find((s) => s.startsWith("invalid"));
    if (bad) found.push(`${position(text, i)} ${JSON.stringify(text[i])}: ${bad}`);
  }
  return found;
}

test("every example mission tokenizes with a scope on each character", (t) => {
  const dirs = (process.env.REQON_EXAMPLE_DIRS ?? "").split(delimiter).filter(Boolean);
  if (dirs.length === 0) {
    t.skip("REQON_EXAMPLE_DIRS is not set");
    return;
  }
  const files = dirs.flatMap(missionFiles);
  const failures = files.flatMap((file) =>
    problems(readFileSync(file, "utf8")).slice(0, 5).map((p) => `${file} ${p}`));
  assert.deepEqual(failures, []);
  t.diagnostic(`tokenized ${files.length} example files`);
});

function sourceOf(sample) {
  return Array.isArray(sample.source) ? sample.source.join("\n") : sample.source;
}

// Finds each expected text in order (each search starts just after where the previous
// text starts, so a text may lie inside the previous one) and returns
// [text, span start, span end, extra...].
function locate(text, entries, name) {
  let cursor = 0;
  return entries.map(([needle, ...rest]) => {
    const at = text.indexOf(needle, cursor);
    assert.notEqual(at, -1, `${name}: ${JSON.stringify(needle)} not found from offset ${cursor}`);
    cursor = at + 1;
    return [needle, at, at + needle.length, ...rest];
  });
}

for (const sample of samples) {
  test(`sample: ${sample.name}`, () => {
    const text = sourceOf(sample);
    const perChar = scopesPerChar(grammar, text);
    for (const [needle, start, end, scope] of locate(text, sample.expect, sample.name)) {
      for (let i = start; i < end; i++) {
        const scopes = perChar[i] ?? [];
        assert.ok(scopes.includes(scope),
          `${sample.name}: ${JSON.stringify(needle)} at ${position(text, i)} has [${scopes.join(", ")}], expected ${scope}`);
      }
    }
    for (const [needle, start, end, scope] of locate(text, sample.absent ?? [], sample.name)) {
      for (let i = start; i < end; i++) {
        assert.ok(!(perChar[i] ?? []).includes(scope),
          `${sample.name}: ${JSON.stringify(needle)} at ${position(text, i)} must not have ${scope}`);
      }
    }
  });
}
