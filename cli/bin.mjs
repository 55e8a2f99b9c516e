#!/usr/bin/env node
// The `cox` executable for package.json `bin`: loads the TypeScript entry through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./cox.ts');
