// The dashboard in a real headless Chromium (Debian's /usr/bin/chromium,
// never a downloaded one), driven by puppeteer-core. Started by
// tests/integration/dashboard_test.cpp inside its pid namespace, against a
// convention it set up: a leader (caps morse, "64bit encoder") serving the
// dashboard, a member (caps "Caesar cipher"), the example encoders with
// morse, base64 and rot13 spawned. Steps, each bounded in time:
//   1. load the page (token in the URL fragment) and see the actors;
//   2. ask morse "SOS" from the form and read the reply;
//   3. give the member morse and take it from the leader with the page's
//      capability controls: morse moves to the member;
//   4. SIGKILL the worker of base64 (the pid the page shows, checked to be a
//      troupe-worker) and see the restart in the timeline, the live event
//      list and the table.
// Screenshots of each step go to $TROUPE_BROWSER_OUT. The page must log no
// error, break no Content-Security-Policy rule and ask nothing of another origin.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const url = process.env.TROUPE_DASHBOARD_URL;
const leader = process.env.TROUPE_LEADER_PORT;
const member = process.env.TROUPE_MEMBER_PORT;
const out = process.env.TROUPE_BROWSER_OUT;
if (!url || !leader || !member || !out) {
  console.error('dashboard.mjs: set TROUPE_DASHBOARD_URL, TROUPE_LEADER_PORT, TROUPE_MEMBER_PORT, TROUPE_BROWSER_OUT');
  process.exit(2);
}
const origin = new URL(url).origin;
const STEP_MS = 20000;

const step = (what) => console.log(`-- ${what}`);
const problems = [];

const profile = mkdtempSync(join(tmpdir(), 'troupe-chromium-'));
const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium',
  headless: false,  // --headless below: Chromium's own headless mode, as the flag says
  userDataDir: profile,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--window-size=1440,1100'],
  defaultViewport: { width: 1440, height: 1100 },
});

let page;
try {
  page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(origin + '/') && !r.url().startsWith('data:')) problems.push(`request to another origin: ${r.url()}`);
  });

  const rowOf = (name) => `#actors tbody tr[data-name="${name}"]`;
  const cellText = (name, cls) => page.$eval(`${rowOf(name)} td.${cls}`, (td) => td.textContent);

  step('1. load the page and see the actors');
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  for (const n of ['morse', 'base64', 'rot13']) await page.waitForSelector(rowOf(n));
  await page.waitForFunction(() => document.getElementById('live').dataset.state === 'on');
  if (page.url().includes('token=')) problems.push('the token stayed in the address bar');
  await page.waitForSelector('#events li[data-kind="actor_started"]');
  await page.waitForSelector(`.cap[data-cap="morse"][data-system="${leader}"]`);
  await page.screenshot({ path: join(out, '1-loaded.png'), fullPage: true });
  console.log(`morse on ${await cellText('morse', 'system')}, rot13 on ${await cellText('rot13', 'system')}`);

  step('2. ask morse "SOS" from the form and read the reply');
  await page.$eval('#send-target', (e) => { e.value = ''; });
  await page.type('#send-target', 'morse');
  await page.$eval('#send-payload', (e) => { e.value = ''; });
  await page.type('#send-payload', '"SOS"');
  await page.click('#send-ask');
  await page.waitForSelector('#reply[data-state="ok"]');
  const reply = await page.$eval('#reply-body', (e) => e.textContent);
  if (JSON.parse(reply) !== '... --- ...') throw new Error(`the reply shown is ${reply}, not "... --- ..."`);
  console.log(`reply: ${reply} (${await page.$eval('#reply-head', (e) => e.textContent)})`);
  await page.screenshot({ path: join(out, '2-asked.png'), fullPage: true });

  step('3. give the member morse, take it from the leader: morse moves to the member');
  await page.type(`form.cap-add[data-system="${member}"] input`, 'morse');
  await page.click(`form.cap-add[data-system="${member}"] button`);
  await page.waitForSelector(`.cap[data-cap="morse"][data-system="${member}"]`);
  await page.click(`.cap[data-cap="morse"][data-system="${leader}"] button`);
  await page.waitForFunction((sel, port) => {
    const td = document.querySelector(sel);
    return td && td.textContent.endsWith(':' + port);
  }, {}, `${rowOf('morse')} td.system`, member);
  await page.waitForSelector(`${rowOf('morse')}[data-state="running"]`);
  if (await page.$(`.cap[data-cap="morse"][data-system="${leader}"]`)) throw new Error('the leader still shows morse');
  await page.waitForSelector('#events li[data-kind="actor_moved"]');
  console.log(`morse now on ${await cellText('morse', 'system')}`);
  await page.screenshot({ path: join(out, '3-moved.png'), fullPage: true });

  step('4. SIGKILL the worker of base64 and see the restart');
  const pid = Number(await cellText('base64', 'worker'));
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no worker pid shown for base64: ${pid}`);
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  if (!cmdline.includes('troupe-worker')) throw new Error(`pid ${pid} is not a troupe worker: ${cmdline}`);
  process.kill(pid, 'SIGKILL');
  await page.waitForFunction((sel) => {
    const td = document.querySelector(sel);
    return td && td.textContent === '1';
  }, {}, `${rowOf('base64')} td.restarts`);
  await page.waitForSelector(`${rowOf('base64')}[data-state="running"]`);
  await page.waitForFunction(() => [...document.querySelectorAll('#events li[data-kind="actor_restarted"]')]
    .some((li) => li.textContent.includes('base64') && li.textContent.includes('SIGKILL')));
  await page.waitForSelector('#events li[data-kind="worker_exited"]');
  await page.waitForSelector('#timeline .mark[data-kind="actor_restarted"]');
  await page.waitForSelector('#timeline .mark[data-kind="worker_exited"]');
  const newPid = Number(await cellText('base64', 'worker'));
  console.log(`base64 restarted: worker ${pid} -> ${newPid}, reason "${await cellText('base64', 'reason')}"`);
  if (newPid === pid) throw new Error('base64 shows the killed worker still');
  // The page as an operator sees it after all this: docs/dashboard.png is a copy.
  await page.screenshot({ path: join(out, 'dashboard.png') });
  await page.screenshot({ path: join(out, '4-restarted.png'), fullPage: true });

  const csp = problems.filter((p) => p.includes('Content Security Policy') || p.includes('Refused to'));
  if (problems.length) throw new Error(`the page had problems:\n  ${problems.join('\n  ')}` + (csp.length ? ' (CSP)' : ''));
  console.log('dashboard: every step passed');
} catch (err) {
  // What the page showed when it failed.
  if (page) await page.screenshot({ path: join(out, 'failure.png'), fullPage: true }).catch(() => {});
  if (problems.length) console.error(`the page had problems:\n  ${problems.join('\n  ')}`);
  throw err;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
