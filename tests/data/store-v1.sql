PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT, 
	PRIMARY KEY ("key")
);
INSERT INTO meta VALUES('schema_version','1');
CREATE TABLE runs (
	id VARCHAR(128) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	env VARCHAR(256) NOT NULL, 
	model VARCHAR(512) NOT NULL, 
	split VARCHAR(64), 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	config TEXT NOT NULL, 
	summary TEXT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO runs VALUES('L','loop','arith','micro',NULL,'done','2026-01-02 03:04:05.000000','2026-01-02 03:04:05.000000','{}','{"iterations": []}');
INSERT INTO runs VALUES('L-eval-0','eval','arith','micro','test','done','2026-01-02 03:04:05.000000','2026-01-02 03:04:05.000000','{}','{}');
INSERT INTO runs VALUES('L-collect-0','eval','arith','micro','train','done','2026-01-02 03:04:05.000000','2026-01-02 03:04:05.000000','{}','{}');
INSERT INTO runs VALUES('L-grpo-1','grpo','arith','micro',NULL,'done','2026-01-02 03:04:05.000000','2026-01-02 03:04:05.000000','{}','{}');
INSERT INTO runs VALUES('imp-mcts','improve-oracle','arith','micro',NULL,'done','2026-01-02 03:04:05.000000','2026-01-02 03:04:05.000000','{"oracle": true}','{}');
INSERT INTO runs VALUES('imp-mcts-candidates','improve-oracle-candidates','arith','micro',NULL,'done','2026-01-02 03:04:05.000000','2026-01-02 03:04:05.000000','{"best_run": "imp-mcts"}','{}');
INSERT INTO runs VALUES('nightly-1','nightly','arith','micro',NULL,'done','2026-01-02 03:04:05.000000','2026-01-02 03:04:05.000000','{}','{}');
INSERT INTO runs VALUES('L-eval-x','eval','arith','micro',NULL,'done','2026-01-02 03:04:05.000000','2026-01-02 03:04:05.000000','{}','{}');
CREATE TABLE trajectories (
	id VARCHAR(128) NOT NULL, 
	run_id VARCHAR(128) NOT NULL, 
	task_id VARCHAR(512) NOT NULL, 
	sample INTEGER NOT NULL, 
	env VARCHAR(256) NOT NULL, 
	split VARCHAR(64), 
	subset VARCHAR(256), 
	model VARCHAR(512) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	reward FLOAT, 
	passed BOOLEAN, 
	strategy VARCHAR(128), 
	created_at DATETIME NOT NULL, 
	n_steps INTEGER NOT NULL, 
	calls INTEGER NOT NULL, 
	tokens INTEGER NOT NULL, 
	data TEXT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_trajectory_key UNIQUE (run_id, task_id, sample)
);
INSERT INTO trajectories VALUES('t-root','imp-mcts-candidates','arith-test-L2-0000',0,'arith',NULL,NULL,'micro','ok',NULL,NULL,'mcts[oracle]','2026-01-02 03:04:05.000000',0,0,0,'{"schema_version":"hone.trajectory/1","id":"t-root","run_id":"imp-mcts-candidates","task_id":"arith-test-L2-0000","sample":0,"env":"arith","env_version":"0","split":null,"subset":null,"model":"micro","prompt":[{"role":"system","content":"You can use a calculator.","tool_calls":null,"tool_call_id":null,"name":null},{"role":"user","content":"Compute: 7 / 0 + 3","tool_calls":null,"tool_call_id":null,"name":null}],"tools":[],"steps":[],"answer":null,"feedback":[],"reward":null,"status":"ok","stop_reason":null,"error":null,"usage":{"calls":0,"prompt_tokens":0,"completion_tokens":0,"cost_usd":0.0,"tool_calls":0,"env_steps":0,"seconds":0.0},"parent_ids":[],"strategy":"mcts[oracle]","tags":["oracle"],"meta":{"op":"root","depth":0},"created_at":"2026-01-02T03:04:05Z","finished_at":null}');
INSERT INTO trajectories VALUES('t-partial','imp-mcts-candidates','arith-test-L2-0000',1,'arith',NULL,NULL,'micro','ok',NULL,NULL,'mcts[oracle]','2026-01-02 03:04:06.000000',1,1,15,'{"schema_version":"hone.trajectory/1","id":"t-partial","run_id":"imp-mcts-candidates","task_id":"arith-test-L2-0000","sample":1,"env":"arith","env_version":"0","split":null,"subset":null,"model":"micro","prompt":[{"role":"system","content":"You can use a calculator.","tool_calls":null,"tool_call_id":null,"name":null},{"role":"user","content":"Compute: 7 / 0 + 3","tool_calls":null,"tool_call_id":null,"name":null}],"tools":[],"steps":[{"call":{"model":"micro","request_digest":"d1","sampling":{"temperature":1.0,"top_p":1.0,"max_tokens":null,"seed":null,"stop":null,"logprobs":false,"extra":{}},"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","name":"calculator","arguments":{"expression":"7 / 0"},"arguments_raw":null,"parse_error":null},{"id":"c2","name":"python","arguments":{"code":"print(''Error rate: 3'')"},"arguments_raw":null,"parse_error":null}],"tool_call_id":null,"name":null},"finish_reason":null,"usage":{"prompt_tokens":10,"completion_tokens":5},"latency_s":0.0,"cost_usd":null,"cached":false,"prompt_token_ids":null,"completion_token_ids":null,"completion_logprobs":null},"observations":[{"role":"tool","content":"error: calculator: division by zero","tool_calls":null,"tool_call_id":"c1","name":"calculator"},{"role":"tool","content":"Error rate: 3","tool_calls":null,"tool_call_id":"c2","name":"python"}],"feedback":[],"error":null}],"answer":null,"feedback":[],"reward":null,"status":"ok","stop_reason":null,"error":null,"usage":{"calls":1,"prompt_tokens":10,"completion_tokens":5,"cost_usd":0.0,"tool_calls":2,"env_steps":0,"seconds":0.0},"parent_ids":["t-root"],"strategy":"mcts[oracle]","tags":["oracle"],"meta":{"op":"expand","partial":true,"visits":2,"value":0.5},"created_at":"2026-01-02T03:04:06Z","finished_at":null}');
INSERT INTO trajectories VALUES('t-done','L-eval-0','arith-test-L1-0001',0,'arith','test','L1','micro','ok',1.0,1,NULL,'2026-01-02 03:04:07.000000',2,2,30,'{"schema_version":"hone.trajectory/1","id":"t-done","run_id":"L-eval-0","task_id":"arith-test-L1-0001","sample":0,"env":"arith","env_version":"0","split":"test","subset":"L1","model":"micro","prompt":[{"role":"user","content":"Compute: 2 + 2","tool_calls":null,"tool_call_id":null,"name":null}],"tools":[],"steps":[{"call":{"model":"micro","request_digest":"d2","sampling":{"temperature":1.0,"top_p":1.0,"max_tokens":null,"seed":null,"stop":null,"logprobs":false,"extra":{}},"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c3","name":"calculator","arguments":{},"arguments_raw":"{2+2","parse_error":"not JSON"}],"tool_call_id":null,"name":null},"finish_reason":null,"usage":{"prompt_tokens":10,"completion_tokens":5},"latency_s":0.0,"cost_usd":null,"cached":false,"prompt_token_ids":null,"completion_token_ids":null,"completion_logprobs":null},"observations":[{"role":"tool","content":"error: calculator: arguments are not a valid JSON object (not JSON)","tool_calls":null,"tool_call_id":"c3","name":"calculator"}],"feedback":[],"error":{"type":"ToolError","message":"calculator: arguments are not a valid JSON object (not JSON)","step_index":0,"raw":"{2+2"}},{"call":{"model":"micro","request_digest":"d3","sampling":{"temperature":1.0,"top_p":1.0,"max_tokens":null,"seed":null,"stop":null,"logprobs":false,"extra":{}},"message":{"role":"assistant","content":"The answer is 4.","tool_calls":null,"tool_call_id":null,"name":null},"finish_reason":null,"usage":{"prompt_tokens":10,"completion_tokens":5},"latency_s":0.0,"cost_usd":null,"cached":false,"prompt_token_ids":null,"completion_token_ids":null,"completion_logprobs":null},"observations":[],"feedback":[],"error":null}],"answer":"4","feedback":[{"source":"verifier","name":"exact_match","score":1.0,"passed":true,"text":"expected 4, got 4","evidence":null,"visibility":"hidden","step_index":null}],"reward":1.0,"status":"ok","stop_reason":"done","error":null,"usage":{"calls":2,"prompt_tokens":20,"completion_tokens":10,"cost_usd":0.0,"tool_calls":1,"env_steps":0,"seconds":0.0},"parent_ids":[],"strategy":null,"tags":[],"meta":{},"created_at":"2026-01-02T03:04:07Z","finished_at":"2026-01-02T03:04:08Z"}');
CREATE TABLE leases (
	run_id VARCHAR(128) NOT NULL, 
	owner VARCHAR(64) NOT NULL, 
	pid INTEGER NOT NULL, 
	host VARCHAR(256) NOT NULL, 
	node VARCHAR(256) NOT NULL, 
	acquired_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	PRIMARY KEY (run_id)
);
CREATE TABLE feedback (
	trajectory_id VARCHAR(128) NOT NULL, 
	idx INTEGER NOT NULL, 
	source VARCHAR(16) NOT NULL, 
	name VARCHAR(256) NOT NULL, 
	score FLOAT, 
	passed BOOLEAN, 
	visibility VARCHAR(8) NOT NULL, 
	step_index INTEGER, 
	text TEXT, 
	PRIMARY KEY (trajectory_id, idx), 
	FOREIGN KEY(trajectory_id) REFERENCES trajectories (id) ON DELETE CASCADE
);
INSERT INTO feedback VALUES('t-done',0,'verifier','exact_match',1.0,1,'hidden',NULL,'expected 4, got 4');
CREATE INDEX ix_trajectories_order ON trajectories (created_at, id);
CREATE INDEX ix_trajectories_run_order ON trajectories (run_id, created_at, id);
COMMIT;
