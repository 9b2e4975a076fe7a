// Prints the TextMate scopes of whole files as JSON, for the differential test against
// the Pygments lexer (tests/editors/test_textmate.py):
//   node scopes.mjs FILE...  ->  {"FILE": [[start, end, [scope, ...]], ...], ...}
// Offsets count Unicode code points, like Python strings.
import { readFileSync } from "node:fs";
import { loadGrammar, scopesPerChar } from "./tokenize.mjs";

const grammar = await loadGrammar();
const result = {};
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  const perChar = scopesPerChar(grammar, text);
  const runs = [];
  let point = 0;
  for (let i = 0; i < text.length; i++) {
    const scopes = perChar[i];
    const last = runs.at(-1);
    if (last && last[1] === point && last[2] === scopes) last[1] = point + 1;
    else if (scopes) runs.push([point, point + 1, scopes]);
    if (text.codePointAt(i) > 0xffff) i++; // the low surrogate belongs to the same point
    point++;
  }
  result[file] = runs;
}
process.stdout.write(JSON.stringify(result));
