// Shared by the browser tests: Debian's chromium, headless, and a failing check.
import { chromium } from "playwright-core";

export function expect(cond, what) {
  if (!cond) throw new Error("expectation failed: " + what);
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
