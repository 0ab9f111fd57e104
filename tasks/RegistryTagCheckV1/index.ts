// The output layer loads first: it guards stdout/stderr before task-lib prints anything.
import '../common/platform/output';
import { info, logger, setOutput, uploadSummary, warn } from '../common/platform/output';
import { runTask } from '../common/platform/task';
import { UserError } from '../common/platform/errors';
import { readSettings } from '../common/platform/settings';
import { TAG_CHECK_SETTINGS, runTagCheck, tagCheckSettingsFrom, tagCheckSummary } from '../common/workflows/tags/check';

void runTask(async (signal) => {
  const settings = tagCheckSettingsFrom(readSettings(TAG_CHECK_SETTINGS));

  const states = await runTagCheck(settings, signal, logger);

  const existing = states.filter((t) => t.exists);
  const unchecked = states.filter((t) => t.error);
  const allExist = existing.length === states.length;
  setOutput('existingTags', existing.map((t) => t.tag).join(','), { grammar: 'taggedReference', list: true });
  setOutput('existingDigests', existing.map((t) => t.pinned).join(','), { grammar: 'pinnedReference', list: true });
  setOutput(
    'newTags',
    states
      .filter((t) => t.exists === false)
      .map((t) => t.tag)
      .join(','),
    { grammar: 'taggedReference', list: true },
  );
  setOutput('skip', settings.onExistingTag === 'skip' && allExist, { grammar: 'boolean' });
  uploadSummary('registry-tag-check', tagCheckSummary(states, settings.onExistingTag));

  if (unchecked.length > 0) {
    throw new UserError(
      `${unchecked.length} of ${states.length} tag(s) could not be checked, so whether they exist is unknown: ${unchecked.map((t) => `${t.tag} (${t.error})`).join('; ')}`,
    );
  }
  if (existing.length === 0) {
    const message = `None of the ${states.length} tag(s) exists yet.`;
    info(message);
    return { message };
  }
  const named = existing.map((t) => `${t.tag} (${t.pinned!.slice(t.pinned!.indexOf('@') + 1)})`).join(', ');
  const message = `${existing.length} of ${states.length} tag(s) already exist: ${named}`;
  const remedy = 'bump the version, or delete the tag on purpose';
  if (settings.onExistingTag === 'fail') throw new UserError(`${message}; ${remedy} (onExistingTag: fail).`);
  if (settings.onExistingTag === 'skip') {
    warn(`${message}; ${allExist ? 'skip is true: later steps can be skipped' : 'the others are new, so skip is false'} (onExistingTag: skip).`);
    return { message };
  }
  warn(`${message}; ${remedy} (onExistingTag: warn).`);
  return { withIssues: true, message };
});
