import pytest

from pcfrl_bench import catalog
from pcfrl_bench.errors import ConfigError, PcfrlError, UnknownNameError
from pcfrl_bench.registry import Registry


def test_register_get_and_duplicates():
    reg = Registry("widget")
    reg.register("alpha")(int)
    assert reg.get("alpha") is int and "alpha" in reg and reg.names() == ["alpha"]
    with pytest.raises(PcfrlError, match="registered twice"):
        reg.register("alpha")(float)


def test_unknown_name_suggests_close_matches():
    reg = Registry("widget")
    reg.register("contrastive")(int)
    with pytest.raises(UnknownNameError) as err:
        reg.get("contrastiv")
    assert "Did you mean 'contrastive'" in str(err.value)


def test_every_yaml_entry_has_a_registered_implementation():
    from pcfrl_bench.methods import METHODS
    from pcfrl_bench.tasks import TASKS
    for e in catalog.all_entries("method"):
        assert e.implementation in METHODS, e.name
        assert e.description
    for e in catalog.all_entries("task"):
        assert e.implementation in TASKS, e.name
        assert e.metric


def test_the_registry_has_one_source_at_the_repository_root(tmp_path, monkeypatch):
    """methods/ and tasks/ live at the top of the checkout, with no copy inside the package; a built package reads
    the copy the wheel build put into its resources, and PCFRL_BENCH_HOME replaces both."""
    monkeypatch.delenv("PCFRL_BENCH_HOME", raising=False)
    root = catalog.project_root()
    assert catalog.registry_root() == root
    assert (root / "methods" / "pcfrl.yaml").is_file() and (root / "tasks" / "synth-fer.yaml").is_file()
    assert not (catalog.resource_root() / "methods").exists() and not (catalog.resource_root() / "tasks").exists()
    monkeypatch.setenv("PCFRL_BENCH_HOME", str(tmp_path / "home"))
    assert catalog.registry_root() == tmp_path / "home"
    monkeypatch.delenv("PCFRL_BENCH_HOME")
    packaged = tmp_path / "resources"
    (packaged / "methods").mkdir(parents=True)
    monkeypatch.setattr(catalog, "resource_root", lambda: packaged)
    assert catalog.registry_root() == packaged


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_base_inheritance_and_yaml_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("PCFRL_BENCH_HOME", str(tmp_path))
    write(tmp_path / "methods/parent.yaml", "description: p\nimplementation: simclr\n"
          "defaults: {method: {temperature: 0.5}, pretrain: {epochs: 3}}\npresets: {smoke: {pretrain: {epochs: 1}}}\n")
    write(tmp_path / "methods/child.yaml", "base: parent\ndefaults: {method: {temperature: 0.1}}\n")
    child = catalog.entry("method", "child")
    assert child.implementation == "simclr" and child.description == "p"
    assert child.defaults == {"method": {"temperature": 0.1}, "pretrain": {"epochs": 3}}
    assert child.presets["smoke"] == {"pretrain": {"epochs": 1}}
    write(tmp_path / "methods/loop.yaml", "base: loop2\n")
    write(tmp_path / "methods/loop2.yaml", "base: loop\n")
    with pytest.raises(ConfigError, match="loops"):
        catalog.entry("method", "loop")
    write(tmp_path / "methods/badkey.yaml", "descripton: typo\n")
    with pytest.raises(ConfigError, match="badkey.yaml"):
        catalog.entry("method", "badkey")
    write(tmp_path / "methods/badpreset.yaml", "presets: {fast: {}}\n")
    with pytest.raises(ConfigError, match="fast"):
        catalog.entry("method", "badpreset")
    write(tmp_path / "methods/broken.yaml", "defaults: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        catalog.entry("method", "broken")
    with pytest.raises(UnknownNameError, match="child"):
        catalog.entry("method", "chidl")


def test_pinned_keys_win_over_presets(tmp_path):
    from pcfrl_bench.runner import resolve
    cfg = resolve("random-init", "synth-fer", "quick").config
    assert cfg.pretrain.epochs == 0  # the synthetic quick preset sets 10 epochs; the method pins 0
    assert resolve("random-init", "synth-fer", "quick", overrides=["pretrain.epochs=3"]).config.pretrain.epochs == 3
