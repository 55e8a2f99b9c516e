#!/usr/bin/env -S node --max-semi-space-size=32
// The `cox` executable for package.json `bin`: loads the TypeScript entry through tsx. The `#!`
// line carries the flags of cli/node-flags.ts (`cox master` and `cox agent` are long-running).
import { register } from 'tsx/esm/api';

register();
await import('./cox.ts');
