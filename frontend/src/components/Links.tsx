import type { LinksConfig } from '../lib/config';

const ITEMS: { key: keyof LinksConfig; label: string; id: string }[] = [
  { key: 'grafana_url', label: 'Grafana', id: 'grafana' },
  { key: 'jaeger_url', label: 'Jaeger', id: 'jaeger' },
  { key: 'prometheus_url', label: 'Prometheus', id: 'prometheus' },
];

export function Links({ config }: { config: LinksConfig }) {
  const shown = ITEMS.filter((i) => config[i.key]);
  if (shown.length === 0) return null;
  return (
    <nav aria-label="Observability tools" className="links" data-testid="links">
      <ul>
        {shown.map((i) => (
          <li key={i.id}>
            <a href={config[i.key]!} target="_blank" rel="noopener noreferrer" data-testid={`link-${i.id}`}>
              {i.label}
              <span aria-hidden="true"> ↗</span>
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}
