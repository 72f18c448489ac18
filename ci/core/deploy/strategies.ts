// The strategies by name (deploy/strategy): the one place the frame, recovery and status look them up.
import { blueGreen } from "./bluegreen.js";
import type { StrategyName } from "./journal.js";
import { recreate } from "./recreate.js";
import type { Strategy } from "./strategy.js";
import { swarm } from "./swarm.js";

export const STRATEGY: Record<StrategyName, Strategy> = {
  recreate,
  "blue-green": blueGreen,
  swarm,
};
