import { chromium } from "playwright-core";
const b = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const p = await b.newPage({ viewport: { width: 1280, height: 1000 } });
const errs = [];
p.on("console", (m) => { if (m.type() === "error") errs.push(m.text()); });
for (const [name, url] of process.argv.slice(2).map((a) => a.split("="))) {
  await p.goto("http://127.0.0.1:50099" + url.replaceAll("~", "="));
  await p.screenshot({ path: `/tmp/shot-${name}.png` });
}
console.log("errors:", errs);
await b.close();
