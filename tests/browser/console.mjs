// Drives the web console as an administrator would, in headless Chromium:
// log in with the token, approve the first unapproved security update for All Computers,
// screenshot the dashboard, and check that a forged form post is refused.
// Usage: node console.mjs BASE_URL TOKEN SCREENSHOT.png  (prints one JSON line)
import { chromium } from 'playwright-core';

const [base, token, screenshot] = process.argv.slice(2);
const fail = (message) => { console.error(message); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const page = await browser.newPage();
  await page.goto(`${base}/admin`);
  if (!page.url().endsWith('/admin/login')) fail(`not sent to the login page: ${page.url()}`);

  await page.fill('input[name=token]', 'ferry_wrong');
  await page.click('button:has-text("Log in")');
  if (!(await page.textContent('body')).includes('not the admin token')) fail('a wrong token was not refused');

  await page.fill('input[name=token]', token);
  await page.click('button:has-text("Log in")');
  await page.waitForURL(`${base}/admin`);
  const needingBefore = Number(await page.textContent('#needing-approval'));

  await page.goto(`${base}/admin/updates?approval=unapproved&classification=security`);
  const box = page.locator('input[name=id]').first();
  const approved = await box.getAttribute('value');
  await box.check();
  await page.selectOption('select[name=action]', 'approve');
  await page.selectOption('select[name=group]', 'All Computers');
  await page.click('#apply');
  await page.waitForSelector('.msg, .err');
  const message = await page.textContent('.msg, .err');
  if (!message.includes('approved 1 update')) fail(`approving said: ${message}`);

  await page.goto(`${base}/admin`);
  const needingAfter = Number(await page.textContent('#needing-approval'));

  // A rule, added and applied from the console; then a cleanup preview that changes nothing.
  await page.goto(`${base}/admin/rules`);
  await page.fill('input[name=classifications]', 'Critical Updates');
  await page.fill('input[name=deadline_days]', '7');
  await page.click('button:has-text("Add and apply")');
  await page.waitForSelector('.msg, .err');
  const ruleMessage = await page.textContent('.msg, .err');
  if (!ruleMessage.startsWith('ok')) fail(`adding a rule said: ${ruleMessage}`);
  if (!(await page.textContent('table')).includes('Critical Updates')) fail('the rule is not listed');
  await page.goto(`${base}/admin/cleanup`);
  await page.click('button:has-text("Preview")');
  await page.waitForSelector('.msg');
  const preview = await page.textContent('.msg');
  if (!preview.includes('preview (nothing changed)')) fail(`the cleanup preview said: ${preview}`);
  await page.screenshot({ path: screenshot, fullPage: true });

  // The same session, without the form's CSRF field: refused, nothing changes.
  const cookies = await page.context().cookies();
  const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const forged = await fetch(`${base}/admin/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: `action=decline&id=${approved}`,
    redirect: 'manual',
  });
  if (forged.status !== 403) fail(`a forged post answered ${forged.status}`);

  console.log(JSON.stringify({ approved, needingBefore, needingAfter, preview }));
} finally {
  await browser.close();
}
