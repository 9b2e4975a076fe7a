// Loads the generated Reqon TextMate grammar into the real VS Code engine
// (vscode-textmate on vscode-oniguruma) and tokenizes whole documents.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import textmate from "vscode-textmate";
import oniguruma from "vscode-oniguruma";

const require = createRequire(import.meta.url);
const GRAMMAR = fileURLToPath(new URL("../vscode/syntaxes/reqon.tmLanguage.json", import.meta.url));
export const ROOT_SCOPE = "source.reqon";

async function onigLib() {
  const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  return {
    createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
    createOnigString: (text) => new oniguruma.OnigString(text),
  };
}

export async function loadGrammar() {
  const registry = new textmate.Registry({
    onigLib: onigLib(),
    loadGrammar: async (scopeName) =>
      scopeName === ROOT_SCOPE ? textmate.parseRawGrammar(readFileSync(GRAMMAR, "utf8"), GRAMMAR) : null,
  });
  const grammar = await registry.loadGrammar(ROOT_SCOPE);
  if (!grammar) throw new Error(`no grammar for ${ROOT_SCOPE} in ${GRAMMAR}`);
  return grammar;
}

// One entry per character of `text`: the scope stack VS Code gives it
// (null for line breaks, which belong to no token).
export function scopesPerChar(grammar, text) {
  const perChar = new Array(text.length).fill(null);
  let stack = textmate.INITIAL;
  let offset = 0;
  for (const line of text.split("\n")) {
    const result = grammar.tokenizeLine(line, stack, 5000);
    if (result.stoppedEarly) throw new Error(`tokenizing stopped early at offset ${offset}`);
    for (const token of result.tokens) {
      for (let i = token.startIndex; i < Math.min(token.endIndex, line.length); i++) {
        perChar[offset + i] = token.scopes;
      }
    }
    stack = result.ruleStack;
    offset += line.length + 1;
  }
  return perChar;
}
