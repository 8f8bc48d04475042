/** Runs `fn` with stderr captured; returns the JSON log lines it wrote, parsed. */
export function capturedLogs(fn: () => void): Record<string, unknown>[] {
  const lines: string[] = [];
  const write = jest.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    fn();
  } finally {
    write.mockRestore();
  }
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}
