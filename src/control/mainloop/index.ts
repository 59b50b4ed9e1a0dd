/** The main loop process: `runMainLoop(deps)` is its body (see main-loop.ts). */
export {
  DEFAULT_MAIN_LOOP_OPTIONS,
  MainLoop,
  runMainLoop,
  type MainLoopDeps,
  type MainLoopOptions,
  type MainLoopStats,
} from './main-loop.ts';
