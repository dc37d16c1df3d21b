// A live terminal: xterm.js over the engine's terminal WebSocket. The browser sends the session
// cookie and its Origin with the upgrade (no key in the page); bytes both ways are binary frames,
// a resize is a JSON text frame, and the server's text frame says the shell exited.
import { useEffect, useRef } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';

export function TerminalView({ instanceId }) {
  const box = useRef(null);
  useEffect(() => {
    const term = new Terminal({ convertEol: false, fontSize: 13, cursorBlink: true });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current);
    fit.fit();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/v1/instances/${instanceId}/terminal?cols=${term.cols}&rows=${term.rows}`, ['faas-terminal']);
    ws.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    ws.onopen = () => box.current?.setAttribute('data-state', 'open');
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        const exit = JSON.parse(m.data);
        term.write(`\r\n[the shell exited${exit.exitCode !== undefined ? ` with ${exit.exitCode}` : ''}]\r\n`);
      } else term.write(new Uint8Array(m.data));
    };
    ws.onclose = (e) => {
      box.current?.setAttribute('data-state', 'closed');
      term.write(`\r\n[disconnected${e.reason ? `: ${e.reason}` : ''}]\r\n`);
    };
    const input = term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(encoder.encode(d)));
    const resized = term.onResize(({ cols, rows }) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: 'resize', cols, rows })));
    const onWindow = () => fit.fit();
    window.addEventListener('resize', onWindow);
    term.focus();
    return () => {
      window.removeEventListener('resize', onWindow);
      input.dispose();
      resized.dispose();
      ws.close();
      term.dispose();
    };
  }, [instanceId]);
  return <div class="terminal" ref={box} data-state="connecting" />;
}
