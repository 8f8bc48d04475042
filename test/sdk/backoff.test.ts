import { backoffDelayMs } from "../../sdk-ts/src/backoff.js";

const policy = { initialDelayMs: 100, maxDelayMs: 5000 };

test("the cap doubles from initialDelayMs up to maxDelayMs", () => {
  const caps = [0, 1, 2, 3, 4, 5, 6, 10, 60, 5000].map((attempt) => backoffDelayMs(attempt, policy, () => 0.999999999));
  expect(caps).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
});

test("full jitter: the delay is uniform in [0, cap]", () => {
  expect(backoffDelayMs(3, policy, () => 0)).toBe(0);
  expect(backoffDelayMs(3, policy, () => 0.5)).toBe(400);
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelayMs(2, policy);
    expect(d).toBeGreaterThanOrEqual(0);
    expect(d).toBeLessThanOrEqual(400);
    expect(Number.isInteger(d)).toBe(true);
  }
});

test("negative or fractional attempts are clamped", () => {
  expect(backoffDelayMs(-3, policy, () => 0.999999)).toBe(100);
  expect(backoffDelayMs(1.7, policy, () => 0.999999)).toBe(200);
});
