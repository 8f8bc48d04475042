import { Redis } from "iovalkey";
import { startTestServer } from "./redis.js";

test("a test server starts, answers and stops", async () => {
  const server = await startTestServer();
  const client = new Redis(server.url);
  expect(await client.ping()).toBe("PONG");
  await client.quit();
  await server.stop();
});
