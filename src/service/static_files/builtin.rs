//! The page served at `/` (and as the SPA fallback) when the frontend has
//! not been built: the root directory is missing or has no `index.html`.

/// A small self-contained HTML page saying how to build the frontend.
pub(super) const NOT_BUILT: &[u8] = br#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>glasshouse: frontend not built</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
code, pre { background: #f3f3f3; border-radius: 4px; padding: 0.1rem 0.3rem; }
pre { padding: 0.75rem; }
</style>
</head>
<body>
<h1>glasshouse is running</h1>
<p>The server is up, but the web frontend has not been built, so there is
no <code>index.html</code> to serve from the static root.</p>
<p>Build it from the repository root:</p>
<pre>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>The files land in <code>frontend/dist</code> and are picked up without a
restart. Meanwhile the API answers as usual: try
<a href="/healthz"><code>/healthz</code></a>,
<a href="/api/stats"><code>/api/stats</code></a> and
<a href="/metrics"><code>/metrics</code></a>.</p>
</body>
</html>
"#;
