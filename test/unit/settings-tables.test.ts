// Each task reads its inputs through one declarative table (tasks/common/platform/settings.ts). The
// table is what the code believes; task.json is what users see in the editor and their YAML. They
// must agree: the same inputs, the same kinds, the same defaults, the same pickList options, and
// every number's range stated in its help text as "(min to max".
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { OutputTable } from '../../tasks/common/platform/output';
import { Setting, SettingsTable } from '../../tasks/common/platform/settings';
import { INSTALLER_OUTPUTS, INSTALLER_SETTINGS } from '../../tasks/common/tools/install';
import { COSIGN_OUTPUTS } from '../../tasks/common/workflows/cosign/outputs';
import { COSIGN_SETTINGS } from '../../tasks/common/workflows/cosign/settings';
import { GC_RUN_OUTPUTS, GC_RUN_SETTINGS } from '../../tasks/common/workflows/gcrun';
import { GC_WAIT_SETTINGS } from '../../tasks/common/workflows/guard';
import { GC_WAIT_OUTPUTS } from '../../tasks/common/workflows/guard/wait';
import { TAG_CHECK_OUTPUTS, TAG_CHECK_SETTINGS } from '../../tasks/common/workflows/tags/check';
import { CLEANUP_OUTPUTS, CLEANUP_SETTINGS } from '../../tasks/common/workflows/tags/cleanup';
import { ROOT } from '../harness/paths';

interface TaskInput {
  name: string;
  type: string;
  defaultValue?: string;
  options?: Record<string, string>;
  helpMarkDown?: string;
  properties?: Record<string, string>;
}

const TABLES: Record<string, SettingsTable> = {
  CosignInstallerV1: INSTALLER_SETTINGS,
  CosignV1: COSIGN_SETTINGS,
  DoRegistryGarbageCollectionV1: GC_RUN_SETTINGS,
  DoRegistryGcWaitV1: GC_WAIT_SETTINGS,
  RegistryTagCheckV1: TAG_CHECK_SETTINGS,
  RegistryCleanupV1: CLEANUP_SETTINGS,
};

/** Each task's outputs, declared once next to its workflow (what runTask sets). */
const OUTPUT_TABLES: Record<string, OutputTable<any>> = {
  CosignInstallerV1: INSTALLER_OUTPUTS,
  CosignV1: COSIGN_OUTPUTS,
  DoRegistryGarbageCollectionV1: GC_RUN_OUTPUTS,
  DoRegistryGcWaitV1: GC_WAIT_OUTPUTS,
  RegistryTagCheckV1: TAG_CHECK_OUTPUTS,
  RegistryCleanupV1: CLEANUP_OUTPUTS,
};

function taskOutputs(folder: string): string[] {
  const json = JSON.parse(fs.readFileSync(path.join(ROOT, 'tasks', folder, 'task.json'), 'utf8')) as { outputVariables?: Array<{ name: string }> };
  return (json.outputVariables ?? []).map((o) => o.name);
}

function taskInputs(folder: string): TaskInput[] {
  const json = JSON.parse(fs.readFileSync(path.join(ROOT, 'tasks', folder, 'task.json'), 'utf8')) as { inputs: TaskInput[] };
  return json.inputs;
}

/** The task.json input types a setting kind may be declared as. */
function typesFor(setting: Setting): string[] {
  switch (setting.kind) {
    case 'bool':
      return ['boolean'];
    case 'int':
      return ['int'];
    case 'pick':
      return ['pickList'];
    case 'lines':
      return ['multiLine'];
    case 'connection':
      return [`connectedService:${setting.endpointType}`];
    case 'list':
      return ['string', 'multiLine'];
    case 'string':
    case 'secret':
      return ['string', 'filePath'];
  }
}

/** The default as task.json spells it. */
function defaultFor(setting: Setting): string {
  switch (setting.kind) {
    case 'bool':
    case 'int':
    case 'pick':
    case 'string':
      return String(setting.default);
    default:
      return '';
  }
}

describe('settings tables agree with task.json', () => {
  it('every task folder has a table', () => {
    const folders = fs.readdirSync(path.join(ROOT, 'tasks')).filter((f) => fs.existsSync(path.join(ROOT, 'tasks', f, 'task.json')));
    assert.deepStrictEqual(folders.sort(), Object.keys(TABLES).sort());
  });

  for (const [folder, table] of Object.entries(TABLES)) {
    describe(folder, () => {
      const inputs = taskInputs(folder);

      it('declares the same inputs as task.json', () => {
        assert.deepStrictEqual(Object.keys(table).sort(), inputs.map((i) => i.name).sort());
      });

      for (const input of inputs) {
        const setting = table[input.name];
        if (!setting) continue;
        it(`${input.name}: kind, default${setting.kind === 'pick' ? ', options' : ''}${setting.kind === 'int' ? ', range' : ''}`, () => {
          // An editable pickList (filled from a data source) is free text to the task.
          const type = input.type === 'pickList' && input.properties?.EditableOptions === 'True' ? 'string' : input.type;
          assert.ok(typesFor(setting).includes(type), `${input.name}: table kind ${setting.kind}, task.json type ${input.type}`);
          assert.strictEqual(input.defaultValue ?? '', defaultFor(setting), `${input.name}: default`);
          assert.ok((input.helpMarkDown ?? '').trim().length > 0, `${input.name}: help text`);
          if (setting.kind === 'pick') assert.deepStrictEqual(Object.keys(input.options ?? {}), [...setting.options], `${input.name}: options`);
          if (setting.kind === 'int') {
            const stated = /\((\d+) to (\d+)\b/.exec(input.helpMarkDown ?? '');
            assert.ok(stated, `${input.name}: the help text states no "(min to max" range`);
            assert.deepStrictEqual([Number(stated[1]), Number(stated[2])], [setting.min, setting.max], `${input.name}: range`);
            assert.ok(setting.default >= setting.min && setting.default <= setting.max, `${input.name}: default inside its range`);
          }
        });
      }
    });
  }

  describe('output tables agree with task.json', () => {
    it('every task folder has an output table', () => {
      assert.deepStrictEqual(Object.keys(OUTPUT_TABLES).sort(), Object.keys(TABLES).sort());
    });
    for (const [folder, table] of Object.entries(OUTPUT_TABLES)) {
      it(`${folder}: the same outputs as task.json's outputVariables, each with a grammar and a source`, () => {
        assert.deepStrictEqual(Object.keys(table).sort(), taskOutputs(folder).sort());
        for (const [name, decl] of Object.entries(table)) assert.ok(decl.grammar && typeof decl.value === 'function', name);
      });
    }
  });
});
