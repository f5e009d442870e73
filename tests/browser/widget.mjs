// Drives the web chat widget on the demo page in Debian's headless chromium.
// Usage: node widget.mjs BASE_URL SCREENSHOT_DIR
// Exits non-zero with a message on the first failed expectation.
import { expect, launch } from "./lib.mjs";

const base = process.argv[2];
const shots = process.argv[3] || ".";
if (!base) {
  console.error("usage: node widget.mjs BASE_URL [SCREENSHOT_DIR]");
  process.exit(2);
}


const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: "vi-VN" });
  const page = await context.newPage();
  page.on("pageerror", (e) => { throw new Error("page error: " + e.message); });
  await page.goto(base + "/");

  const bubble = page.locator(".bubble");
  await bubble.click();
  const input = page.locator('input[aria-label="Tin nhắn"]');
  await input.waitFor({ state: "visible" });

  const botMessages = page.locator(".msg.out");
  async function ask(text) {
    const before = await botMessages.count();
    await input.fill(text);
    await input.press("Enter");
    await page.locator(".msg.in", { hasText: text }).last().waitFor();
    await page.waitForFunction(
      (n) => {
        const root = document.querySelector("#cskh-widget").shadowRoot;
        return root.querySelectorAll(".msg.out").length > n && !root.querySelector(".typing");
      },
      before,
      { timeout: 20000 },
    );
    return (await botMessages.last().textContent()) || "";
  }

  // With diacritics, then without.
  let reply = await ask("Phí ship ra Hà Nội bao nhiêu vậy shop?");
  expect(reply.includes("25.000đ"), "answer with diacritics mentions 25.000đ, got: " + reply);
  reply = await ask("phi ship ra ha noi bao nhieu");
  expect(reply.includes("25.000đ"), "answer without diacritics mentions 25.000đ, got: " + reply);

  // Addresses, e-mails and phone numbers in answers are links; amounts and a bare
  // "đầu số 1900" are not, and the text reads exactly as the knowledge base wrote it.
  expect((await botMessages.last().locator("a").count()) === 0, "no links in a fee answer");
  reply = await ask("hotline bên mình làm việc mấy giờ vậy");
  const hours = botMessages.last();
  expect(reply.includes("hotline 1900 6868 hoạt động") && reply.includes("cskh@mayxanh.vn"), "hotline answer: " + reply);
  const hrefs = await hours.locator("a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  expect(JSON.stringify(hrefs) === JSON.stringify(["tel:19006868", "mailto:cskh@mayxanh.vn"]),
    "phone and e-mail links: " + hrefs);
  reply = await ask("làm sao tra cứu hạn bảo hành sản phẩm");
  const web = botMessages.last().locator("a");
  expect((await web.count()) === 1 && (await web.getAttribute("href")) === "https://mayxanh.vn/bao-hanh"
    && (await web.getAttribute("target")) === "_blank" && (await web.getAttribute("rel")) === "noopener noreferrer",
    "web address link: " + reply);

  // A vague question gets quick replies; clicking one answers it.
  reply = await ask("bảo hành");
  const quick = page.locator(".quick button");
  await quick.first().waitFor();
  const count = await quick.count();
  expect(count >= 2 && count <= 3, "2-3 quick replies, got " + count);
  const label = (await quick.first().textContent()) || "";
  const before = await botMessages.count();
  await quick.first().click();
  await page.locator(".msg.in", { hasText: label }).last().waitFor();
  await page.waitForFunction(
    (n) => document.querySelector("#cskh-widget").shadowRoot.querySelectorAll(".msg.out").length > n,
    before,
    { timeout: 20000 },
  );
  expect((await page.locator(".quick button").count()) === 0, "quick replies cleared after a choice");

  // Longer than the server takes: not sent, not cut, still in the box, and the
  // customer is told why in Vietnamese.
  const long = "Em mua áo ở shop, mặc một lần đã bị xù lông. ".repeat(50).trim();
  const inBefore = await page.locator(".msg.in").count();
  await input.fill(long);
  expect((await input.inputValue()) === long, "the box takes the whole long message");
  await input.press("Enter");
  const notice = page.locator(".msg.out", { hasText: "dài hơn 2.000 ký tự" });
  await notice.waitFor({ timeout: 5000 });
  expect((await input.inputValue()) === long, "the long message stays in the box");
  expect((await page.locator(".msg.in").count()) === inBefore, "the long message was not sent");
  await input.fill("");
  await page.screenshot({ path: shots + "/widget-desktop.png" });

  // Reload: the conversation is still there.
  await page.reload();
  await page.locator(".msg.in", { hasText: "Phí ship ra Hà Nội bao nhiêu vậy shop?" }).waitFor({ timeout: 10000 });
  await page.locator(".msg.in", { hasText: label }).waitFor();
  const inCount = await page.locator(".msg.in").count();
  expect(inCount === 6, "6 customer messages after reload, got " + inCount);
  expect((await page.locator('.msg.out a[href="tel:19006868"]').count()) === 1, "links are kept in the history");

  // Phone-sized screen: the open panel fills the screen.
  const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const p2 = await phone.newPage();
  await p2.goto(base + "/");
  await p2.locator(".bubble").tap();
  const box = await p2.locator(".panel").boundingBox();
  expect(box && Math.round(box.width) === 375, "panel is full-width on a phone, got " + JSON.stringify(box));
  expect(!(await p2.locator(".bubble").isVisible()), "the launcher hides while the panel fills the screen");
  // The send button is the one a thumb reaches: tap it.
  await p2.locator('input[aria-label="Tin nhắn"]').fill("shop giao hàng mấy ngày");
  await p2.getByRole("button", { name: "Gửi" }).tap();
  await p2.locator(".msg.in", { hasText: "shop giao hàng mấy ngày" }).waitFor({ timeout: 10000 });
  await p2.waitForFunction(() => {
    const root = document.querySelector("#cskh-widget").shadowRoot;
    return root.querySelectorAll(".msg.out").length >= 2 && !root.querySelector(".typing");
  }, null, { timeout: 20000 });
  await p2.screenshot({ path: shots + "/widget-phone.png" });
  await p2.locator(".close").tap();
  await p2.locator(".bubble").waitFor({ state: "visible", timeout: 5000 });
  console.log("widget browser test passed");
} finally {
  await browser.close();
}
