// Parses route diagrams with Mermaid's own parser and checks that every label reads back as the
// text it was written from (the escaping round-trips).
//
//   node tests/diagram/check.mjs NPM_DIR DIAGRAM_DIR
//
// DIAGRAM_DIR holds NAME.mmd files (written by render_diagrams.py), each with NAME.json: the
// graph the diagram was serialised from (diagram.graph), with the unescaped texts. Mermaid runs
// in Node with jsdom standing in for the browser's DOM (its sanitizer, DOMPurify, needs one);
// parsing needs no layout. Exits 1 listing every diagram that fails.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [npmDir, diagramDir] = process.argv.slice(2);
if (!npmDir || !diagramDir) {
  console.error("usage: node check.mjs NPM_DIR DIAGRAM_DIR");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(npmDir), "package.json"));
const { JSDOM } = require("jsdom");
const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const mermaidEntry = require.resolve("mermaid");
const { default: mermaid } = await import(pathToFileURL(mermaidEntry).href);
const mermaidVersion = JSON.parse(fs.readFileSync(
  path.join(path.dirname(mermaidEntry), "..", "package.json"), "utf8")).version;
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

// What a label shows: Mermaid stores entity codes as placeholders (its decodeEntities turns them
// back into HTML entities before drawing) and the browser decodes the entities.
function shown(text) {
  const html = text.replace(/ﬂ°°/g, "&#").replace(/ﬂ°/g, "&").replace(/¶ß/g, ";");
  const element = dom.window.document.createElement("textarea");
  element.innerHTML = html;
  return element.value;
}

// Reports the first element that differs (lists) or the whole value.
function compare(problems, what, actual, expected) {
  if (JSON.stringify(actual) === JSON.stringify(expected)) {
    return;
  }
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length) {
      problems.push(`${what}: Mermaid read ${actual.length}, expected ${expected.length}`);
    }
    for (let i = 0; i < Math.min(actual.length, expected.length); i += 1) {
      const a = JSON.stringify(actual[i]);
      const e = JSON.stringify(expected[i]);
      if (a !== e) {
        problems.push(`${what}[${i}]: Mermaid read ${a}, expected ${e}`);
        return;
      }
    }
    return;
  }
  problems.push(`${what}: Mermaid read ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}

const names = fs.readdirSync(diagramDir).filter((n) => n.endsWith(".mmd")).sort();
if (names.length === 0) {
  console.error(`no .mmd files in ${diagramDir}`);
  process.exit(2);
}
let failed = 0;
for (const name of names) {
  const file = path.join(diagramDir, name);
  const text = fs.readFileSync(file, "utf8");
  const expected = JSON.parse(fs.readFileSync(file.replace(/\.mmd$/, ".json"), "utf8"));
  const problems = [];
  try {
    const parsed = await mermaid.parse(text);
    compare(problems, "diagram type", parsed.diagramType, "flowchart-v2");
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const db = diagram.db;
    const vertices = [...db.getVertices().values()].map((v) => [v.id, shown(v.text), v.type]);
    const types = { box: "square", stadium: "stadium", cylinder: "cylinder" };
    const nodes = expected.subgraphs.flatMap((s) => s.nodes);
    compare(problems, "nodes", vertices,
      nodes.map((n) => [n.id, n.lines.join("<br>"), types[n.shape]]));
    compare(problems, "edges", db.getEdges().map((e) => [e.start, e.end, shown(e.text)]),
      expected.edges.map((e) => [e.start, e.end, e.text]));
    // Mermaid lists subgraphs innermost first; these are never nested.
    const subgraphs = db.getSubGraphs().map((s) => [s.id, shown(s.title), [...s.nodes].sort()]);
    subgraphs.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const wanted = expected.subgraphs.map((s) => [s.id, s.title, s.nodes.map((n) => n.id).sort()]);
    wanted.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    compare(problems, "subgraphs", subgraphs, wanted);
  } catch (error) {
    problems.push(String(error && error.message ? error.message : error));
  }
  if (problems.length) {
    failed += 1;
    console.log(`FAIL ${name}`);
    for (const problem of problems) {
      console.log(`  ${problem.split("\n").join("\n  ")}`);
    }
  } else {
    console.log(`ok   ${name}`);
  }
}
console.log(`mermaid ${mermaidVersion}: ${names.length - failed} of ${names.length} diagrams parse `
  + "and read back as written");
process.exit(failed ? 1 : 0);
