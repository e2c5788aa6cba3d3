"""The benchmark's parent side of the process layout (measure.py is the children's): the driver
processes, one per framework module, and the loop that runs the jobs through them one at a time."""

import multiprocessing

from benchmarks import measure
from benchmarks.plan import harness_config


class Drivers:
    """One spawned driver process per framework module (measure.driver), started together and
    kept until close(); `run(job)` sends a job to its module's driver and waits for the result."""

    def __init__(self, modules, base_config):
        context = multiprocessing.get_context("spawn")
        self.conns, self.processes, self.info = {}, {}, {}
        for i, module in enumerate(modules):
            parent, child = context.Pipe()
            process = context.Process(target=measure.driver, args=(module, child, base_config, i == 0),
                                      name=f"bench-driver-{module}", daemon=False)
            process.start()
            child.close()
            self.conns[module], self.processes[module] = parent, process
        for module, conn in self.conns.items():
            message = self._receive(module)
            if message[0] != "ready":
                self.close()
                raise RuntimeError(f"the {module} driver failed to start: {message[1]}")
            self.info[module] = message[1]

    def _receive(self, module):
        try:
            return self.conns[module].recv()
        except EOFError:
            return ("error", f"the {module} driver died (exit code {self.processes[module].exitcode})", "")

    def run(self, job):
        self.conns[job["module"]].send(job)
        return self._receive(job["module"])

    def close(self):
        for module, conn in self.conns.items():
            try:
                conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for process in self.processes.values():
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()


def run_jobs(drivers, jobs, log=print):
    """Run the jobs one at a time; returns their results (an `error` key where one failed)."""
    results = []
    for job in jobs:
        job = {**job, "config": harness_config(job["overrides"])}
        message = drivers.run(job)
        result = {k: job[k] for k in ("framework", "module", "threads", "depth", "width", "batch_size")}
        if message[0] == "ok":
            result.update(message[1])
            log(f"  {job['framework']:<16} {result['s_epoch']:8.4f} s/epoch "
                f"({result['min']:.4f}–{result['max']:.4f}), "
                f"first epoch {result['first_s']:.4f}, {result['steps_timed']}/{result['steps_per_epoch']} steps, "
                f"peak +{result['peak_mb']:.0f} MB")
        else:
            result["error"] = message[1]
            log(f"  {job['framework']:<16} FAILED: {message[1]}\n{message[2] if len(message) > 2 else ''}")
        results.append(result)
    return results
