// Checks the built console against what the gateway's Content-Security-Policy and the
// "no API key in the browser" rule require. Runs after every `npm run build`.
//
//   - index.html has no inline <script>, no <style> and no style="" attribute;
//   - every script and stylesheet is a same-origin file under /console/assets/ with a
//     content hash in its name;
//   - no file in dist/ mentions the API-key header or an Authorization header
//     (the console never sends either), and no source map is shipped.
import fs from 'node:fs';
import path from 'node:path';

const dist = path.resolve(process.argv[2] ?? 'dist');
const problems = [];
const html = fs.readFileSync(path.join(dist, 'index.html'), 'utf8');

for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
  const [, attrs, body] = m;
  if (!/\bsrc=/.test(attrs)) problems.push(`index.html: inline <script>: ${body.trim().slice(0, 80)}`);
  else if (!/src="\/console\/assets\/[\w.-]+-[\w-]{8}\.js"/.test(attrs)) problems.push(`index.html: unexpected script ${attrs}`);
}
if (/<style\b/i.test(html)) problems.push('index.html: inline <style>');
if (/\sstyle=/i.test(html)) problems.push('index.html: style="" attribute');
if (/\son[a-z]+=/i.test(html)) problems.push('index.html: inline event handler attribute');
for (const m of html.matchAll(/<link\b[^>]*rel="stylesheet"[^>]*>/gi)) {
  if (!/href="\/console\/assets\/[\w.-]+-[\w-]{8}\.css"/.test(m[0])) problems.push(`index.html: unexpected stylesheet ${m[0]}`);
}

const files = [];
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else files.push(p);
  }
};
walk(dist);
for (const f of files) {
  const rel = path.relative(dist, f);
  if (rel.endsWith('.map')) problems.push(`${rel}: source map shipped`);
  if (!/\.(js|css|html|svg|txt|json)$/.test(rel)) continue;
  const text = fs.readFileSync(f, 'utf8');
  if (/open-sandbox-api-key|open_sandbox_api_key/i.test(text)) problems.push(`${rel}: mentions the API-key header`);
  if (/['"]authorization['"]/i.test(text)) problems.push(`${rel}: sets an Authorization header`);
}

if (problems.length) {
  console.error(`dist check failed:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`dist check passed: ${files.length} files, no inline script or style, no API-key header`);
