// The official TypeScript SDK client through microloop-mcp: node ts_client.mjs RELAY SERVER_JS ROOT
// Prints one JSON object with what each step returned.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [relay, serverJs, root] = process.argv.slice(2);
const transport = new StdioClientTransport({ command: relay, args: ["--", process.execPath, serverJs, root], cwd: root });
const client = new Client({ name: "ts-test", version: "1.0.0" });
await client.connect(transport);
const out = { tools: (await client.listTools()).tools.map((t) => t.name), reads: [] };
const path = `${root}/notes.txt`;
for (let i = 0; i < 3; i++) {
  out.reads.push(await client.callTool({ name: "read_text_file", arguments: { path } }));
}
out.write = await client.callTool({ name: "write_file", arguments: { path, content: "changed\n" } });
out.after_write = await client.callTool({ name: "read_text_file", arguments: { path } });
try {
  await client.callTool({ name: "read_txt_file", arguments: { path } });
  out.unknown = null;
} catch (e) {
  out.unknown = { code: e.code, message: e.message, data: e.data };
}
await client.close();
console.log(JSON.stringify(out));
