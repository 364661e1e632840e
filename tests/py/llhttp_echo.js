// Node's own HTTP server (llhttp, strict: insecureHTTPParser off) echoing
// each request's body, for tests/py/test_smuggling.py to compare framings
// with. Prints its port on stdout; exits when stdin closes.
const http = require("http");
const server = http.createServer({ insecureHTTPParser: false }, (req, res) => {
  const parts = [];
  req.on("data", (d) => parts.push(d));
  req.on("end", () => {
    const body = Buffer.concat(parts);
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
    res.end(body);
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
