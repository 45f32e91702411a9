#!/usr/bin/env node
// Runs the TypeScript CLI natively (Node.js 24 strips the types); see package.json "bin".
import { runCli } from '../src/cli.ts';

runCli();
