// An instance's processes, files (browse, upload, download) and exposed services.
import { useEffect, useState } from 'preact/hooks';
import { api, list, q } from './api.js';

function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const reload = () => load().then((data) => setState({ data, error: null }), (error) => setState({ data: null, error }));
  useEffect(() => void reload(), deps);
  return [state, reload];
}

const Err = ({ error }) => (error ? <p class="error">{error.message}</p> : null);

export function Processes({ instanceId }) {
  const [{ data, error }, reload] = useLoad(() => list(`/v1/instances/${instanceId}/processes`), [instanceId]);
  const signal = (pid) => api('POST', `/v1/instances/${instanceId}/processes/${pid}/signal`, { signal: 'SIGTERM' }).then(reload, alert);
  return (
    <div class="processes">
      <button onClick={reload}>Refresh</button>
      <Err error={error} />
      <table>
        <thead><tr><th>PID</th><th>Command</th><th>State</th><th>Exit</th><th>Started</th><th /></tr></thead>
        <tbody>
          {(data ?? []).map((p) => (
            <tr><td>{p.pid}</td><td><code>{p.command}</code></td><td>{p.state}</td><td>{p.exitCode ?? ''}</td><td>{age(p.startedAt)}</td>
              <td>{p.state === 'running' && <button onClick={() => signal(p.pid)}>SIGTERM</button>}</td></tr>
          ))}
        </tbody>
      </table>
      {data && !data.length && <p class="muted">No background processes (start some with the SDK's processes.start).</p>}
    </div>
  );
}

export function Files({ instanceId }) {
  const [dir, setDir] = useState('/root');
  const [{ data, error }, reload] = useLoad(() => list(`/v1/instances/${instanceId}/files/list?path=${q(dir)}`), [instanceId, dir]);
  const join = (name) => (dir === '/' ? '' : dir) + '/' + name;
  const up = () => setDir(dir.replace(/\/[^/]+\/?$/, '') || '/');
  const upload = async (e) => {
    for (const file of e.target.files) await api('PUT', `/v1/instances/${instanceId}/files/write?path=${q(join(file.name))}`, undefined, { raw: file }).catch(alert);
    e.target.value = '';
    reload();
  };
  return (
    <div class="files">
      <form class="path" onSubmit={(e) => { e.preventDefault(); setDir(e.target.elements.path.value || '/'); }}>
        <button type="button" onClick={up} disabled={dir === '/'}>Up</button>
        <input name="path" value={dir} key={dir} />
        <button type="submit">Go</button>
        <label class="upload">Upload <input type="file" multiple onChange={upload} /></label>
      </form>
      <Err error={error} />
      <table>
        <thead><tr><th>Name</th><th>Type</th><th>Size</th><th>Modified</th></tr></thead>
        <tbody>
          {(data ?? []).map((f) => (
            <tr>
              <td>{f.type === 'dir'
                ? <a href="#" onClick={(e) => { e.preventDefault(); setDir(join(f.name)); }}>{f.name}/</a>
                : <a href={`/v1/instances/${instanceId}/files/read?path=${q(join(f.name))}`} download={f.name}>{f.name}</a>}</td>
              <td>{f.type}</td><td>{f.type === 'file' ? bytes(f.size) : ''}</td><td>{f.mtime ? age(f.mtime) : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Services({ instanceId }) {
  const [{ data, error }, reload] = useLoad(() => list(`/v1/instances/${instanceId}/services`), [instanceId]);
  const expose = (e) => {
    e.preventDefault();
    const { name, port } = e.target.elements;
    api('PUT', `/v1/instances/${instanceId}/services/${q(name.value)}`, { port: Number(port.value) }).then(reload, alert);
  };
  return (
    <div class="services">
      <Err error={error} />
      <table>
        <thead><tr><th>Name</th><th>Port</th><th>Auth</th><th>URL</th></tr></thead>
        <tbody>{(data ?? []).map((s) => <tr><td>{s.name}</td><td>{s.port}</td><td>{s.auth}</td><td><a href={s.tokenUrl ?? s.url} target="_blank" rel="noopener noreferrer">{s.url}</a></td></tr>)}</tbody>
      </table>
      <form class="expose" onSubmit={expose}>
        <input name="name" placeholder="name" required pattern="[a-z0-9\-]+" /> <input name="port" type="number" min="1" max="65535" placeholder="port" required />
        <button type="submit">Expose</button>
      </form>
    </div>
  );
}

export function age(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

export function bytes(n) {
  if (n == null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
