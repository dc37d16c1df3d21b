// The snapshot and branch tree as an SVG graph: a snapshot's children are the instances started
// from it; an instance's children are the snapshots taken of it (a branch is both: a snapshot
// and the instances started from it). Laid out left to right, one row per leaf.
const W = 150, H = 30, DX = 190, DY = 42;

export function buildTree(snapshots, instances) {
  const nodes = new Map();
  for (const s of snapshots) nodes.set(s.id, { id: s.id, kind: 'snapshot', label: s.name ?? s.id, item: s, children: [] });
  for (const i of instances) nodes.set(i.id, { id: i.id, kind: 'instance', label: i.id, item: i, children: [] });
  const parentOf = (n) => (n.kind === 'instance' ? n.item.snapshotId : n.item.instanceId ?? n.item.parentId);
  const roots = [];
  for (const n of nodes.values()) {
    const p = nodes.get(parentOf(n));
    if (p && p !== n) p.children.push(n);
    else roots.push(n);
  }
  const byTime = (a, b) => String(a.item.createdAt).localeCompare(String(b.item.createdAt));
  let row = 0;
  const place = (n, depth) => {
    n.children.sort(byTime);
    n.x = depth * DX;
    if (!n.children.length) n.y = row++ * DY;
    else {
      for (const c of n.children) place(c, depth + 1);
      n.y = (n.children[0].y + n.children[n.children.length - 1].y) / 2;
    }
  };
  for (const r of roots.sort(byTime)) place(r, 0);
  return { nodes: [...nodes.values()], rows: row };
}

export function TreeGraph({ snapshots, instances, selected, onSelect }) {
  const { nodes, rows } = buildTree(snapshots, instances);
  const width = Math.max(...nodes.map((n) => n.x), 0) + W + 20;
  const height = Math.max(rows, 1) * DY + 10;
  return (
    <svg class="tree" width={width} height={height} data-nodes={nodes.length}>
      {nodes.flatMap((n) =>
        n.children.map((c) => (
          <path class="edge" d={`M${n.x + W + 10},${n.y + 5 + H / 2} C${n.x + W + 30},${n.y + 5 + H / 2} ${c.x - 10},${c.y + 5 + H / 2} ${c.x + 10},${c.y + 5 + H / 2}`} />
        )),
      )}
      {nodes.map((n) => (
        <g class={`node ${n.kind} ${n.kind === 'instance' ? n.item.state : ''} ${selected === n.id ? 'selected' : ''}`} data-id={n.id}
          transform={`translate(${n.x + 10},${n.y + 5})`} onClick={() => onSelect(n)}>
          <rect width={W} height={H} rx={n.kind === 'snapshot' ? 4 : 14} />
          <text x={8} y={19}>{(n.kind === 'snapshot' ? '◆ ' : '● ') + shorten(n.label)}</text>
          <title>{`${n.kind} ${n.id}${n.kind === 'instance' ? ` (${n.item.state})` : ''}`}</title>
        </g>
      ))}
    </svg>
  );
}

const shorten = (s) => (s.length > 19 ? s.slice(0, 18) + '…' : s);
