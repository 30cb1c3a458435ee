// The bench's load generators are forked from here, not from the bench process itself.
// The bench process runs the OMS server with its projection (5M positions, hundreds of MB):
// forking it (child_process.fork) marks every page of that heap copy-on-write, and the
// server then takes a page fault on the first write to each page after the fork. Measured in
// order.capture.http: ~4 faults and ~0.1 ms of the event loop per order for the projection's
// updates alone (transparent huge pages), a cost a server that never forks does not pay.
// This process is forked once at the start, while the bench is still small, and forks the
// generators on request. Plain JavaScript: it needs nothing from the project.
import { fork } from 'node:child_process';

process.on('message', (m) => {
  const child = fork(m.module, [m.flag], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let done = false;
  const answer = (r) => {
    if (done) return;
    done = true;
    process.send({ id: m.id, ...r });
  };
  child.once('message', (r) => {
    answer(r);
    child.disconnect();
  });
  child.once('error', (e) => answer({ ok: false, error: String(e) }));
  child.once('exit', (code) => answer({ ok: false, error: `exited with code ${code}` }));
  child.send(m.spec);
});
process.on('disconnect', () => process.exit(0));
