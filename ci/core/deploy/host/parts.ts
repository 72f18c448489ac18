// Host functions a strategy adds to the agent (agent.ts appends them before its dispatch): sh text defining
// `op_NAME` (called from the client) and `step_NAME` (run under the lock through \`run\`), and observers that add
// sections to `observe` (OBSERVERS). One file per strategy that needs its own; the base agent serves recreate and
// blue/green.
import { SWARM_PART } from "./swarm.js";

export const HOST_PARTS: readonly string[] = [SWARM_PART];
