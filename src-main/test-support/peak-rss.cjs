// Preloaded into a measured CLI run (faults.ts): writes the process's peak resident memory
// (KiB, threads included) to LOFTQ_PEAK_RSS_FILE as it exits.
const { writeFileSync } = require('node:fs');

process.on('exit', () => {
  if (process.env.LOFTQ_PEAK_RSS_FILE) writeFileSync(process.env.LOFTQ_PEAK_RSS_FILE, String(process.resourceUsage().maxRSS));
});
