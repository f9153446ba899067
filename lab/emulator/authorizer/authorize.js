#!/usr/bin/env node
// The lab's policy decision point: one JSON request per line on stdin, one JSON decision per
// line on stdout, in order. The lab emulator (irf_lab_authz.py) works out who asks, for what
// and on which resource, gathers the policies that apply, and asks here; the evaluation itself
// is @cloud-copilot/iam-simulate's, which follows AWS's documented evaluation logic (identity,
// resource, permission boundary, session, VPC endpoint policies; same- and cross-account).
//
// Request:  {id, principal, action, resource, resourceAccount, context, identityPolicies,
//            resourcePolicy?, vpcEndpointPolicies?, sessionPolicy?}
// Decision: {id, decision: Allowed|ImplicitlyDenied|ExplicitlyDenied|Error, reasons, error?}
'use strict';

const readline = require('node:readline');
const { runSimulation, runUnsafeSimulation, getDenialReasons } = require('@cloud-copilot/iam-simulate');

async function decide(request) {
  const simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.resourceAccount },
      contextVariables: request.context || {},
    },
    identityPolicies: request.identityPolicies || [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  if (request.resourcePolicy) simulation.resourcePolicy = request.resourcePolicy;
  if (request.vpcEndpointPolicies) simulation.vpcEndpointPolicies = request.vpcEndpointPolicies;
  if (request.sessionPolicy) simulation.sessionPolicy = request.sessionPolicy;

  const result = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (
    result.resultType === 'error' &&
    result.errors.message === 'no.resource.types' &&
    /^arn:[^:]+:[^:]+:[^:]*::/.test(request.resource) &&
    !request.resourcePolicy && !request.sessionPolicy && !request.vpcEndpointPolicies
  ) {
    // AWS-owned resources have ARNs without an account (arn:aws:ssm:<region>::document/
    // AWS-RunShellScript), which the service authorization reference's resource types
    // (${Account}) do not match; with identity policies alone the unvalidated evaluation is
    // the same logic, on the literal ARN.
    const decision = runUnsafeSimulation(simulation, {});
    return { decision, reasons: [], identityResult: decision };
  }
  if (result.resultType === 'error') {
    return { decision: 'Error', error: result.errors.message, details: result.errors };
  }
  if (result.resultType !== 'single') {
    // "*" for an action with resource-level permissions: decided over every resource type.
    return { decision: result.overallResult, reasons: [] };
  }
  const analysis = result.result.analysis;
  return {
    decision: result.overallResult,
    sameAccount: analysis.sameAccount,
    blockedBy: analysis.blockedBy || [],
    reasons: result.overallResult === 'Allowed' ? [] : getDenialReasons(analysis),
    resourceResult: analysis.resourceAnalysis ? analysis.resourceAnalysis.result : undefined,
    identityResult: analysis.identityAnalysis ? analysis.identityAnalysis.result : undefined,
  };
}

(async () => {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let id = null;
    let answer;
    try {
      const request = JSON.parse(line);
      id = request.id;
      answer = await decide(request);
    } catch (err) {
      answer = { decision: 'Error', error: String((err && err.message) || err) };
    }
    process.stdout.write(JSON.stringify({ id, ...answer }) + '\n');
  }
})();
