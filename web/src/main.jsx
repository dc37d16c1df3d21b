// The faas dashboard: instances with live metrics, the snapshot/branch tree, a terminal, an
// instance's processes, files and services, and the engine's event stream. Everything goes
// through the same API as the SDKs, authenticated by the browser session (api.js).
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, list, loadSession, logout } from './api.js';
import { Files, Processes, Services, age, bytes } from './panels.jsx';
import { TerminalView } from './terminal.jsx';
import { TreeGraph } from './tree.jsx';
import './app.css';

function useEvents(onEvent) {
  const [events, setEvents] = useState([]);
  const [live, setLive] = useState(false);
  const cb = useRef(onEvent);
  cb.current = onEvent;
  useEffect(() => {
    const source = new EventSource('/v1/events');
    const take = (m) => {
      const e = JSON.parse(m.data);
      setEvents((list) => [e, ...list].slice(0, 200));
      cb.current(e);
    };
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(false);
    for (const type of ['instance.pending', 'instance.ready', 'instance.paused', 'instance.resumed', 'instance.stopped', 'instance.error', 'instance.deleted',
      'snapshot.created', 'snapshot.deleted', 'branch.created', 'branch.deleted', 'execution.complete', 'image.imported', 'image.deleted']) source.addEventListener(type, take);
    return () => source.close();
  }, []);
  return [events, live];
}

/** CPU % between two samples, and the latest memory, per instance. */
function useMetrics(instances) {
  const [metrics, setMetrics] = useState({});
  const prev = useRef({});
  useEffect(() => {
    let stop = false;
    const tick = async () => {
      const ready = instances.filter((i) => i.state === 'ready');
      const next = {};
      await Promise.all(ready.map(async (i) => {
        try {
          const m = await api('GET', `/v1/instances/${i.id}/metrics`);
          const p = prev.current[i.id];
          const dt = p ? (Date.parse(m.timestamp) - Date.parse(p.timestamp)) / 1000 : 0;
          next[i.id] = { ...m, cpuPercent: p && dt > 0 ? (100 * (m.cpu.usageSeconds - p.cpu.usageSeconds)) / dt : null };
          prev.current[i.id] = m;
        } catch { /* stopped meanwhile */ }
      }));
      if (!stop) setMetrics(next);
    };
    tick();
    const t = setInterval(tick, 3000);
    return () => { stop = true; clearInterval(t); };
  }, [instances.map((i) => i.id + i.state).join()]);
  return metrics;
}

function App() {
  const [session, setSession] = useState(null);
  const [instances, setInstances] = useState([]);
  const [snapshots, setSnapshots] = useState([]);
  const [selected, setSelected] = useState(null); // a node of the tree: {id, kind, item}
  const [open, setOpen] = useState(null); // the instance whose panels are shown
  const [tab, setTab] = useState('terminal');
  const [diffBase, setDiffBase] = useState(null);
  const [output, setOutput] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const refresh = async () => {
    try {
      const [i, s] = await Promise.all([list('/v1/instances'), list('/v1/snapshots')]);
      setInstances(i);
      setSnapshots(s);
    } catch (e) { setError(e.message); }
  };
  useEffect(() => { loadSession().then(setSession, (e) => setError(e.message)).then(refresh); }, []);
  const [events, live] = useEvents(() => refresh());
  const metrics = useMetrics(instances);

  const act = async (what, fn) => {
    setBusy(what); setError(null);
    try { const r = await fn(); await refresh(); return r; } catch (e) { setError(`${what}: ${e.message}`); } finally { setBusy(false); }
  };
  const start = (snapshotId) => act('start', async () => setOpen((await api('POST', '/v1/instances?wait=true', { snapshotId })).id));
  const branch = (id) => act('branch', () => api('POST', `/v1/instances/${id}/branch`, { count: 1, wait: true }));
  const snapshot = (id) => act('snapshot', () => api('POST', `/v1/instances/${id}/snapshot`, {}));
  const stop = (id) => act('stop', () => api('POST', `/v1/instances/${id}/stop`));
  const remove = (n) => act('delete', async () => {
    if (!confirm(`Delete ${n.id}?`)) return;
    await api('DELETE', n.kind === 'snapshot' ? `/v1/snapshots/${n.id}` : `/v1/instances/${n.id}`);
    if (open === n.id) setOpen(null);
    setSelected(null);
  });
  const diff = (a, b) => act('diff', async () => setOutput({ title: `diff ${a} → ${b}`, diff: await api('GET', `/v1/snapshots/${a}/diff/${b}`) }));

  const openInstance = instances.find((i) => i.id === open);
  return (
    <div class="app">
      <header>
        <h1>faas</h1>
        <span class={`live ${live ? 'on' : ''}`} title="event stream">{live ? 'live' : 'offline'}</span>
        <span class="who">{session && `${session.keyId}${session.admin ? ' (admin)' : ''}`}</span>
        <a href="/docs">API docs</a>
        <button onClick={() => logout().catch((e) => setError(e.message))}>Log out</button>
      </header>
      {error && <p class="error" role="alert" onClick={() => setError(null)}>{error}</p>}
      {busy && <p class="busy">{busy}…</p>}

      <section>
        <h2>Instances</h2>
        <table class="instances">
          <thead><tr><th>ID</th><th>State</th><th>Snapshot</th><th>vCPU</th><th>Memory</th><th>Age</th><th>CPU</th><th>Mem used</th><th>Procs</th><th /></tr></thead>
          <tbody>
            {instances.map((i) => {
              const m = metrics[i.id];
              return (
                <tr data-id={i.id} class={open === i.id ? 'open' : ''}>
                  <td><a href="#" onClick={(e) => { e.preventDefault(); setOpen(i.id); }}>{i.id}</a></td>
                  <td><span class={`state ${i.state}`}>{i.state}</span></td>
                  <td>{i.snapshotId}</td><td>{i.resources?.vcpus}</td><td>{i.resources?.memory} MB</td><td>{age(i.createdAt)}</td>
                  <td>{m?.cpuPercent != null ? `${m.cpuPercent.toFixed(1)} %` : ''}</td><td>{m ? bytes(m.memory.usageBytes) : ''}</td><td>{m?.processes.count ?? ''}</td>
                  <td class="actions">
                    {i.state === 'ready' && <button onClick={() => branch(i.id)}>Branch</button>}
                    {i.state === 'ready' && <button onClick={() => snapshot(i.id)}>Snapshot</button>}
                    {i.state !== 'stopped' && <button onClick={() => stop(i.id)}>Stop</button>}
                    <button onClick={() => remove({ id: i.id, kind: 'instance' })}>Delete</button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <form class="start" onSubmit={(e) => { e.preventDefault(); start(e.target.elements.snapshot.value); }}>
          <select name="snapshot">{snapshots.map((s) => <option value={s.id}>{s.name ? `${s.name} (${s.id})` : s.id}</option>)}</select>
          <button type="submit" disabled={!snapshots.length}>Start instance</button>
        </form>
      </section>

      <section>
        <h2>Snapshot and branch tree</h2>
        <div class="graph"><TreeGraph snapshots={snapshots} instances={instances} selected={selected?.id} onSelect={(n) => setSelected(n)} /></div>
        {selected && (
          <div class="node-actions" data-for={selected.id}>
            <strong>{selected.kind} {selected.id}</strong>
            {selected.kind === 'snapshot' && <button onClick={() => start(selected.id)}>Start</button>}
            {selected.kind === 'instance' && selected.item.state === 'ready' && <button onClick={() => setOpen(selected.id)}>Open</button>}
            {selected.kind === 'instance' && selected.item.state === 'ready' && <button onClick={() => branch(selected.id)}>Branch</button>}
            {selected.kind === 'snapshot' && !diffBase && <button onClick={() => setDiffBase(selected.id)}>Diff from here…</button>}
            {selected.kind === 'snapshot' && diffBase && diffBase !== selected.id && <button onClick={() => { diff(diffBase, selected.id); setDiffBase(null); }}>Diff {diffBase} → here</button>}
            {diffBase && <button onClick={() => setDiffBase(null)}>Cancel diff</button>}
            <button onClick={() => remove(selected)}>Delete</button>
          </div>
        )}
        {output && (
          <div class="output">
            <strong>{output.title}</strong> <button onClick={() => setOutput(null)}>Close</button>
            <p>{output.diff.totals.files} files: +{output.diff.totals.added} ~{output.diff.totals.modified} −{output.diff.totals.deleted}</p>
            <ul>{output.diff.files.slice(0, 200).map((f) => <li><code>{f.change} {f.path}</code></li>)}</ul>
          </div>
        )}
      </section>

      {openInstance && (
        <section class="instance-panel" data-id={openInstance.id}>
          <h2>{openInstance.id} <button onClick={() => setOpen(null)}>Close</button></h2>
          <nav>{['terminal', 'processes', 'files', 'services'].map((t) => <button class={tab === t ? 'on' : ''} onClick={() => setTab(t)}>{t}</button>)}</nav>
          {openInstance.state !== 'ready' ? <p class="muted">The instance is {openInstance.state}.</p>
            : tab === 'terminal' ? <TerminalView instanceId={openInstance.id} key={openInstance.id} />
            : tab === 'processes' ? <Processes instanceId={openInstance.id} />
            : tab === 'files' ? <Files instanceId={openInstance.id} />
            : <Services instanceId={openInstance.id} />}
        </section>
      )}

      <section>
        <h2>Events</h2>
        <ol class="events">{events.map((e) => <li><time>{e.createdAt.slice(11, 19)}</time> <b>{e.type}</b> {e.resourceId}</li>)}</ol>
      </section>
    </div>
  );
}

render(<App />, document.getElementById('app'));
