// A transferred hotline call in the agent console: the agent sees what speech
// recognition heard, with confidences, next to the ticket, and the bot's replies as
// the caller heard them.
// Usage: node console_call.mjs BASE_URL USERNAME PASSWORD HEARD_TEXT SCREENSHOT_DIR
import { expect, launch } from "./lib.mjs";

const [base, username, password, heard, shots = "."] = process.argv.slice(2);

const browser = await launch();
try {
  const page = await (await browser.newContext({ viewport: { width: 1300, height: 900 } })).newPage();
  await page.goto(base + "/agent");
  await page.fill("#username", username);
  await page.fill("#password", password);
  await page.click('#login button[type="submit"]');
  await page.locator("#tickets .ticket").first().click();
  const call = page.locator(".transcript.call");
  await call.waitFor({ timeout: 10000 });
  const lines = await call.locator(".heard").allTextContents();
  expect(lines.some((l) => l.startsWith(heard) && l.includes("độ tin cậy 31%")), "heard text with confidence: " + lines);
  expect(lines.some((l) => l.includes("[không nghe rõ]")), "empty recognition shown: " + lines);
  // The bot's side of the call reads as the caller heard it.
  const bot = await page.locator(".transcript:not(.call):not(.past) .m.out small").allTextContents();
  expect(bot.includes("Bot (đọc cho khách)"), "spoken bot messages labelled: " + bot);
  await page.screenshot({ path: shots + "/console-call.png", fullPage: true });
  console.log("console call test passed");
} finally {
  await browser.close();
}
