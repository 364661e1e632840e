// Same-origin URLs: the page works from `cargo run` on :8080 and from the container alike.

export interface LocationLike {
  protocol: string;
  host: string;
}

/** ws(s)://<host><path> derived from the page's own location. */
export function wsUrl(path: string, loc: LocationLike): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${path.startsWith('/') ? path : `/${path}`}`;
}
