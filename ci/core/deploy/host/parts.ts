// Host functions a strategy adds to the agent (agent.ts appends them before its dispatch): sh text defining
// `op_NAME` (called from the client) and `step_NAME` (run under the lock through \`run\`). One file per strategy
// that needs its own; the base agent serves recreate and blue/green.
export const HOST_PARTS: readonly string[] = [];
