// Generates the console's embedded world map (server/assets/console/world.tsv):
// "<alpha-2>\t<centroid x,y>\t<area px²>\t<SVG path data>", Natural Earth 1:50m (public domain, via
// world-atlas 2.0.2, ISC), Natural Earth projection fitted to 1000x500,
// simplified and rounded to 0.1 px.
import fs from "node:fs";
import { feature } from "topojson-client";
import { presimplify, simplify, quantile } from "topojson-simplify";
import { geoNaturalEarth1, geoPath } from "d3-geo";
import countries from "i18n-iso-countries";

const scale = process.argv[2] || "50m";
let topo = JSON.parse(fs.readFileSync(`node_modules/world-atlas/countries-${scale}.json`, "utf8"));
topo = presimplify(topo);
topo = simplify(topo, quantile(topo, Number(process.argv[3] || 0.5)));
const fc = feature(topo, topo.objects.countries);
const projection = geoNaturalEarth1().fitExtent([[2, 2], [998, 498]], { type: "Sphere" });
const path = geoPath(projection).digits(1);
const byName = { Kosovo: "XK", "N. Cyprus": "CY-N", Somaliland: "SO-N" };
const out = [];
const seen = new Set();
const missing = [];
for (const f of fc.features.sort((a, b) => geoPath().area(b) - geoPath().area(a))) {
  let a2 = f.id ? countries.numericToAlpha2(f.id) : undefined;
  if (!a2) a2 = byName[f.properties.name];
  if (!a2) { missing.push(`${f.id} ${f.properties.name}`); continue; }
  const d = path(f);
  // One shape per code: Natural Earth's tiny dependencies that share a code
  // (Ashmore and Cartier Is. for AU) are dropped.
  if (!d || seen.has(a2)) continue;
  seen.add(a2);
  const [cx, cy] = path.centroid(f).map((v) => Math.round(v * 10) / 10);
  const area = Math.round(path.area(f) * 10) / 10;
  out.push(`${a2}\t${cx},${cy}\t${area}\t${d}`);
}
out.sort();
out.unshift("#sphere\t0,0\t0\t" + path({ type: "Sphere" }));
fs.writeFileSync(process.argv[4] || "world.tsv", out.join("\n") + "\n");
console.error(`features ${fc.features.length}, written ${out.length - 1}, skipped: ${missing.join(", ")}`);
