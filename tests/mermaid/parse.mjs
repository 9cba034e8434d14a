// Reads Mermaid documents on stdin, separated by NUL characters, and parses each with Mermaid's own parser
// (no browser: jsdom stands in for the DOM Mermaid's sanitizer expects). Prints one line per document,
// "ok <diagram type>" or "error <message>"; exits 1 if any failed.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = false;
for (const text of input.split("\0")) {
  try {
    const result = await mermaid.parse(text);
    console.log(`ok ${result.diagramType}`);
  } catch (error) {
    failed = true;
    console.log(`error ${String(error.message ?? error).split("\n").slice(0, 4).join(" | ")}`);
  }
}
process.exit(failed ? 1 : 0);
