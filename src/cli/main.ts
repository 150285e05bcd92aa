import { read, READ_USAGE } from './read.js';
import { record, RECORD_USAGE, replay, REPLAY_USAGE } from './replay.js';
import { diff, DIFF_USAGE } from './diff.js';
import { dump, DUMP_USAGE } from './dump.js';
import { UsageError, usageFailure } from './common.js';

const USAGE = `usage: flowtap <command> [options]

commands:
  read FILE      decode a pcap/pcapng capture into exchange records
  dump           run the transparent tap proxy, recording what crosses it
  record         record whole exchanges (live capture, capture file or proxy) for replay
  replay FILE... send recorded requests to a target again (GoReplay's .gor or flowtap recordings)
  diff           compare a candidate's answers with production's, noise cancelled (three-way or two-way)

run "flowtap <command> --help" for a command's options`;

function main(argv: string[]): Promise<number> | number {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command === undefined ? 2 : 0;
  }
  try {
    if (command === 'read') return read(rest);
    if (command === 'dump') return dump(rest);
    if (command === 'record') return record(rest);
    if (command === 'replay') return replay(rest);
    if (command === 'diff') return diff(rest);
    throw new UsageError(`unknown command "${command}"`);
  } catch (e) {
    const usages: Record<string, string> = { read: READ_USAGE, dump: DUMP_USAGE, record: RECORD_USAGE, replay: REPLAY_USAGE, diff: DIFF_USAGE };
    return usageFailure(e, Object.hasOwn(usages, command) ? usages[command] : USAGE);
  }
}

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0); // `flowtap read x | head` is normal use
  throw e;
});

Promise.resolve(main(process.argv.slice(2))).then(
  (code) => { process.exitCode = code; },
  (e) => { process.stderr.write(`flowtap: ${(e as Error).message}\n`); process.exitCode = 1; },
);
