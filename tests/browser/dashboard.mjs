// The operations dashboard in Debian's headless chromium: sign in with the admin
// token, the KPI cards and charts render with data, and the chart pixels are really
// drawn (checked on a screenshot, not on the DOM alone).
// Usage: node dashboard.mjs BASE_URL ADMIN_TOKEN SCREENSHOT_DIR
import { expect, launch } from "./lib.mjs";

const [base, token, shots = "."] = process.argv.slice(2);

const browser = await launch();
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) external.push(r.url()); });
  await page.goto(base + "/dashboard");
  await page.fill("#token", "sai-ma");
  await page.click('#login button[type="submit"]');
  await page.locator("#login-error").filter({ hasText: "không đúng" }).waitFor({ timeout: 10000 });
  await page.fill("#token", token);
  await page.click('#login button[type="submit"]');
  await page.waitForSelector("body[data-loaded='1']", { timeout: 20000 });

  expect(!(await page.locator("#login").isVisible()), "the sign-in form is gone");
  const cards = await page.locator(".card").allTextContents();
  expect(cards.some((c) => c.startsWith("Cuộc trò chuyện") && /\d/.test(c)), "conversation card: " + cards);
  expect(cards.some((c) => c.startsWith("Bot tự xử lý") && c.includes("%")), "containment card: " + cards);
  const heights = await page.$$eval("#chart-days rect.bar", (rs) => rs.map((r) => Number(r.getAttribute("height"))));
  expect(heights.some((h) => h > 10), "day chart has drawn bars: " + heights);
  const channels = await page.$$eval("#chart-channels rect.bar", (rs) => rs.map((r) => Number(r.getAttribute("height"))));
  expect(channels.some((h) => h > 10), "channel chart has bars: " + channels);
  const csat = await page.$$eval("#chart-csat rect.bar", (rs) => rs.length);
  expect(csat === 5, "CSAT chart has its five (empty) columns: " + csat);

  // The screenshot of the day chart has the bar colours in it.
  const png = await page.locator("#chart-days").screenshot({ path: shots + "/dashboard-days.png" });
  await page.screenshot({ path: shots + "/dashboard.png", fullPage: true });
  const colored = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = "data:image/png;base64," + b64;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width; c.height = img.height;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let green = 0, orange = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, bl] = [d[i], d[i + 1], d[i + 2]];
      if (Math.abs(r - 0x0b) < 30 && Math.abs(g - 0x6e) < 30 && Math.abs(bl - 0x4f) < 30) green++;
      if (Math.abs(r - 0xf7) < 30 && Math.abs(g - 0x90) < 30 && Math.abs(bl - 0x09) < 30) orange++;
    }
    return { green, orange };
  }, png.toString("base64"));
  expect(colored.green > 200 && colored.orange > 200, "bars visible in the screenshot: " + JSON.stringify(colored));
  // The knowledge base's state, and a reload from the page.
  const kb = await page.locator("#kb-summary").textContent();
  expect(/^\d+ mục \(\d+ câu hỏi, \d+ đoạn tài liệu\) trong \d+ tệp · cập nhật lúc /.test(kb), "knowledge summary: " + kb);
  expect((await page.locator("#kb-error").textContent()) === "", "no reload error");
  await page.click("#kb-reload");
  await page.locator("#kb-note").filter({ hasText: /^Đã nạp lại: \d+ mục, mất \d+ ms\.$/ }).waitFor({ timeout: 20000 });
  // Trying a question shows what the bot would do, without a conversation.
  await page.fill("#try-q", "ship ra ha noi het bao nhieu tien");
  await page.click('#try button[type="submit"]');
  await page.waitForSelector("#try-result[data-decision='answer']", { timeout: 20000 });
  const tried = (await page.locator("#try-result").textContent()) || "";
  expect(tried.startsWith("Bot trả lời bằng mục «Phí ship ra Hà Nội bao nhiêu?»") && tried.includes("25.000đ"),
    "tried question: " + tried);
  await page.fill("#try-q", "shop có bán vé máy bay không");
  await page.click('#try button[type="submit"]');
  await page.waitForSelector("#try-result[data-decision='handoff']", { timeout: 20000 });
  const gapRows = await page.locator("#gaps tr").count();
  expect(gapRows >= 1, "knowledge gaps listed");
  expect(external.length === 0, "no external requests: " + external);
  console.log("PIXELS " + JSON.stringify(colored));
  console.log("dashboard browser test passed");
} finally {
  await browser.close();
}
