//! The dashboard's two languages: Russian (the default) and English, chosen by `?lang=` (which
//! also sets a cookie) or the cookie. Every text a page shows is a field of [`Tr`], so a missing
//! translation is a compile error rather than a blank on the screen.

use axum::http::HeaderMap;

/// Name of the cookie that remembers the language.
pub const COOKIE: &str = "aisales_lang";

/// A language of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ru,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    pub fn tr(self) -> &'static Tr {
        match self {
            Lang::Ru => &RU,
            Lang::En => &EN,
        }
    }

    /// The language asked for by the query (`lang=`), else the cookie, else Russian.
    pub fn of(query: Option<&str>, headers: &HeaderMap) -> Lang {
        query
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang=")))
            .and_then(Lang::parse)
            .or_else(|| crate::http::authn::cookie(headers, COOKIE).and_then(Lang::parse))
            .unwrap_or_default()
    }

    /// The language set explicitly by the query, if any (to remember it in the cookie).
    pub fn from_query(query: Option<&str>) -> Option<Lang> {
        query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang="))).and_then(Lang::parse)
    }
}

macro_rules! texts {
    ($($key:ident: $ru:literal, $en:literal;)*) => {
        /// Every text of the dashboard in one language.
        #[derive(Debug)]
        pub struct Tr { $(pub $key: &'static str,)* }
        /// Russian texts.
        pub static RU: Tr = Tr { $($key: $ru,)* };
        /// English texts.
        pub static EN: Tr = Tr { $($key: $en,)* };
    };
}

texts! {
    other_lang: "English", "Русский";
    other_lang_code: "en", "ru";
    app_name: "Продажи", "Sales desk";
    inbox: "Входящие", "Inbox";
    settings: "Настройки", "Settings";
    operations: "Работа системы", "Operations";
    logout: "Выйти", "Sign out";
    login_title: "Вход", "Sign in";
    email: "Эл. почта", "Email";
    password: "Пароль", "Password";
    sign_in: "Войти", "Sign in";
    login_failed: "Неверная почта или пароль, либо вход временно заблокирован после нескольких ошибок.", "The email or password is wrong, or the account is temporarily locked after several failed attempts.";
    login_too_many: "Слишком много попыток входа. Подождите минуту и попробуйте снова.", "Too many sign-in attempts. Wait a minute and try again.";
    form_expired: "Форма устарела. Обновите страницу и отправьте её ещё раз.", "The form has expired. Reload the page and send it again.";
    server_error: "Что-то пошло не так на сервере. Попробуйте ещё раз через минуту.", "Something went wrong on the server. Try again in a minute.";
    password_title: "Смена пароля", "Change your password";
    password_intro: "Вы вошли с одноразовым паролем. Придумайте свой пароль, чтобы продолжить.", "You signed in with a one-time password. Choose your own password to continue.";
    current_password: "Текущий (одноразовый) пароль", "Current (one-time) password";
    new_password: "Новый пароль", "New password";
    repeat_password: "Новый пароль ещё раз", "New password again";
    save_password: "Сохранить пароль", "Save password";
    passwords_differ: "Новые пароли не совпадают.", "The new passwords do not match.";
    wrong_current_password: "Текущий пароль неверен.", "The current password is wrong.";
    weak_password: "Пароль слишком простой: нужно от 10 символов, строчная и заглавная буквы и цифра.", "The password is too weak: use 10 or more characters with a lower-case letter, an upper-case letter and a digit.";
    search: "Поиск", "Search";
    search_placeholder: "Имя, телефон или текст", "Name, phone or text";
    status: "Статус", "Status";
    channel: "Канал", "Channel";
    all: "Все", "All";
    mine: "Мои", "Mine";
    unassigned: "Без оператора", "Unassigned";
    escalated_only: "Эскалированные", "Escalated";
    apply: "Показать", "Show";
    next_page: "Дальше", "Next page";
    first_page: "К началу", "First page";
    no_conversations: "Диалогов нет.", "No conversations.";
    st_open: "Ждёт ответа", "Open";
    st_waiting_customer: "Ждём клиента", "Waiting for customer";
    st_escalated: "Эскалирован", "Escalated";
    st_resolved: "Закрыт", "Resolved";
    ch_green_api: "MAX / WhatsApp", "MAX / WhatsApp";
    ch_telegram: "Telegram", "Telegram";
    ch_whatsapp: "WhatsApp Business", "WhatsApp Business";
    nobody: "не назначен", "unassigned";
    waiting: "ждёт", "waiting";
    unread: "непрочитанных", "unread";
    suggestion_ready: "есть черновик", "draft ready";
    keyboard_hint: "j / k — выбор, Enter — открыть, / — поиск", "j / k to move, Enter to open, / to search";
    live_off: "Нет связи с сервером, переподключаемся…", "Lost the connection to the server; reconnecting…";
    live_gone: "Сессия закончилась. Войдите снова.", "Your session has ended. Sign in again.";
    refresh_failed: "Не удалось обновить страницу. Проверьте сеть.", "Could not refresh the page. Check the network.";
    back_to_inbox: "← Входящие", "← Inbox";
    audit: "Журнал", "Audit";
    customer: "Клиент", "Customer";
    phone: "Телефон", "Phone";
    earlier_conversations: "Прежние диалоги", "Earlier conversations";
    none: "нет", "none";
    assigned_to: "Оператор", "Operator";
    take_over: "Взять себе", "Take over";
    assign: "Назначить", "Assign";
    escalate: "Эскалировать", "Escalate";
    resolve: "Закрыть", "Resolve";
    reopen: "Открыть снова", "Reopen";
    mute: "Выключить черновики", "Mute drafts";
    unmute: "Включить черновики", "Unmute drafts";
    muted: "черновики выключены", "drafts muted";
    timeline: "Переписка", "Messages";
    no_messages: "Сообщений нет.", "No messages.";
    author_customer: "Клиент", "Customer";
    author_assistant: "ИИ", "AI";
    author_operator: "Оператор", "Operator";
    author_system: "Система", "System";
    ms_received: "получено", "received";
    ms_queued: "в очереди", "queued";
    ms_sending: "отправляется", "sending";
    ms_sent: "отправлено", "sent";
    ms_delivered: "доставлено", "delivered";
    ms_read: "прочитано", "read";
    ms_failed: "не доставлено", "failed";
    retry: "Повторить", "Retry";
    suggestion: "Черновик ответа", "Suggested reply";
    no_suggestion: "Черновика нет.", "No suggestion.";
    confidence: "Уверенность", "Confidence";
    intent: "Намерение", "Intent";
    decision: "Решение", "Decision";
    reasons: "Почему", "Reasons";
    autosend_blocked: "Автоотправка не сработала", "Not sent automatically";
    approve: "Отправить как есть", "Approve and send";
    edit_and_send: "Отправить с правкой", "Send edited";
    reject: "Отклонить", "Reject";
    reject_reason: "Причина отказа", "Reason for rejecting";
    request_draft: "Запросить черновик", "Ask for a draft";
    composer: "Ответ оператора", "Operator reply";
    composer_placeholder: "Напишите ответ клиенту", "Write to the customer";
    send: "Отправить", "Send";
    vehicle: "Автомобиль", "Vehicle";
    no_lookups: "Поиска по VIN не было.", "No vehicle lookup yet.";
    oem: "OEM", "OEM";
    gearbox: "Коробка", "Gearbox";
    evidence: "Снимок", "Screenshot";
    correct: "Исправить", "Correct";
    confirm_gearbox: "Подтвердить коробку", "Confirm gearbox";
    lookup_status: "Статус поиска", "Lookup status";
    done_ok: "Готово.", "Done.";
    err_not_found: "Не найдено: возможно, это удалено или относится к другому магазину.", "Not found: it may have been removed or belong to another shop.";
    err_conflict: "Это действие уже не подходит: диалог изменился. На странице его текущее состояние.", "This action no longer applies: the conversation has changed. The page shows its current state.";
    err_invalid: "Данные не приняты: проверьте текст и попробуйте снова.", "The input was not accepted: check the text and try again.";
    err_forbidden: "Ваша роль не позволяет это действие.", "Your role does not allow this action.";
    err_empty_text: "Текст пустой: напишите, что отправить.", "The text is empty: write what to send.";
    not_found_title: "Не найдено", "Not found";
    not_found_text: "Такой страницы нет, или она относится к другому магазину.", "There is no such page, or it belongs to another shop.";
    forbidden_title: "Нет доступа", "No access";
    audit_title: "Журнал событий", "Event log";
    state_at: "Состояние на событии", "State at event";
    show: "Показать", "Show";
    sequence: "№", "#";
    time: "Время", "Time";
    event: "Событие", "Event";
    actor: "Кто", "Actor";
    correlation: "Цепочка", "Chain";
    cause: "Причина", "Cause";
    messages_count: "Сообщений", "Messages";
    pending_suggestions: "Черновиков ждёт", "Pending drafts";
    last_message: "Последнее сообщение", "Last message";
    replayed_to: "Показано состояние после события", "Showing the state after event";
    channels: "Каналы", "Channels";
    users: "Пользователи", "Users";
    api_tokens: "API-токены", "API tokens";
    decision_settings: "Решения и автоотправка", "Decisions and autosend";
    webhook: "Вебхук", "Webhook";
    role: "Роль", "Role";
    last_login: "Последний вход", "Last sign-in";
    name: "Название", "Name";
    created: "Создан", "Created";
    state: "Состояние", "State";
    projectors: "Проекции", "Projectors";
    lag: "Отставание", "Lag";
    owner: "Владелец", "Owner";
    dead_letters: "Необработанные вебхуки", "Dead letters";
    stream_backlog: "Очереди задач", "Job backlog";
    nothing: "Пусто.", "Nothing here.";
    value: "Значение", "Value";
    setting: "Параметр", "Setting";
    add_user: "Добавить пользователя", "Add a user";
    add: "Добавить", "Add";
    one_time_password_is: "Одноразовый пароль (показан один раз, передайте его пользователю):", "One-time password (shown once; give it to the user):";
    new_token_is: "Новый токен (показан один раз, сохраните его):", "New token (shown once; keep it safe):";
    create_token: "Создать токен", "Create a token";
    revoke: "Отозвать", "Revoke";
    revoked: "отозван", "revoked";
    last_used: "Использован", "Last used";
    reregister: "Зарегистрировать вебхук заново", "Register the webhook again";
    save: "Сохранить", "Save";
    settings_saved: "Настройки сохранены.", "Settings saved.";
    settings_refused: "Настройки не приняты:", "The settings were not accepted:";
    only_owner_users: "Пользователями и токенами управляет владелец.", "Only the owner manages users and tokens.";
    ready_checks: "Проверки готовности", "Readiness checks";
    check: "Проверка", "Check";
    message: "Сообщение", "Message";
    kind: "Вид", "Kind";
    count: "Сколько", "Count";
    reason: "Причина", "Reason";
    received: "Получен", "Received";
    events_behind: "событий", "events";
    leads: "Заявки", "Leads";
    lead: "Заявка", "Lead";
    whole_board: "Вся доска", "Whole board";
    lead_kind: "Тип", "Type";
    lead_source: "Источник", "Source";
    ls_received: "Получена", "Received";
    ls_scheduled: "Ждёт рабочего времени", "Scheduled";
    ls_contacting: "Связываемся", "Contacting";
    ls_contacted: "Написали", "Contacted";
    ls_failed: "Не связались", "Failed";
    ls_replied: "Ответил", "Replied";
    ls_no_reply: "Нет ответа", "No reply";
    ls_qualified: "Квалифицирована", "Qualified";
    ls_won: "Сделка", "Won";
    ls_lost: "Потеряна", "Lost";
    lk_gearbox: "КПП", "Gearbox";
    lk_engine: "Двигатель", "Engine";
    lk_tires: "Шины", "Tires";
    back_to_leads: "← Заявки", "← Leads";
    open_conversation: "Диалог", "Conversation";
    mark_qualified: "Квалифицировать", "Mark qualified";
    mark_won: "Сделка состоялась", "Mark won";
    mark_lost: "Потеряна", "Mark lost";
    lost_reason: "Причина потери", "Reason lost";
    note: "Заметка", "Note";
    retry_outreach: "Связаться снова", "Retry outreach";
    first_message: "Первое сообщение", "First message";
    lead_timeline: "История заявки", "Lead timeline";
    lead_fields: "Данные заявки", "Lead details";
    form_answers: "Ответы формы", "Form answers";
    car: "Автомобиль", "Car";
    city: "Город", "City";
    attempts: "Попыток связи", "Outreach attempts";
    submissions: "Отправок формы", "Form submissions";
    err_lead_conflict: "Это действие уже не подходит: заявка в другом статусе. На странице её текущее состояние.", "This action no longer applies: the lead is in another status. The page shows its current state.";
    prices: "Цены", "Prices";
    no_prices: "Цену ещё не искали.", "No price lookup yet.";
    ps_pending: "В очереди", "Pending";
    ps_searching: "Ищем", "Searching";
    ps_priced: "Цена найдена", "Priced";
    ps_estimated: "Оценка", "Estimated";
    ps_not_found: "Не найдено", "Not found";
    ps_escalated: "Передано оператору", "Escalated";
    ps_failed: "Ошибка поиска", "Failed";
    conf_high: "высокая", "high";
    conf_medium: "средняя", "medium";
    conf_low: "низкая", "low";
    basis_market: "по объявлениям", "from market listings";
    basis_own: "по своему прайсу", "from the own price list";
    price_range: "Диапазон", "Range";
    median: "Медиана", "Median";
    listings: "Объявления", "Listings";
    more_listings: "ещё объявлений", "more listings";
    rerun: "Искать цену заново", "Search the price again";
    updated: "Обновлено", "Updated";
    verification: "Проверка", "Verification";
    correct_id: "Исправить VIN / номер кузова", "Correct the VIN / frame number";
    corrected_value: "Правильный номер", "Correct number";
    confirm_model: "Модель коробки с шильдика", "Gearbox model from its tag";
    factory_code: "Заводской код", "Factory code";
    err_price_subject: "Цену этого запроса искать нельзя: в нём нет ни OEM, ни кода коробки, ни марки с моделью.", "This request cannot be priced: it has no OEM number, gearbox code, or make and model.";
    dead_jobs: "Задачи, отложенные после ошибок", "Dead-lettered jobs";
    dead_jobs_hint: "Задача попала сюда после нескольких неудачных попыток. «Повторить» запускает её заново тем же путём, что и команда aisales streams dead-letters retry.", "A job lands here after several failed deliveries. Retry puts it back the same way as aisales streams dead-letters retry.";
    deliveries: "Попыток", "Deliveries";
    aggregate: "Объект", "Object";
    dead_letter_retried: "Задача запущена снова.", "The job was put back.";
    err_dead_letter_gone: "Этой задачи среди отложенных уже нет: её повторили или удалили.", "This dead letter is gone: it was retried or removed.";
    err_dead_letter_unreadable: "Эту задачу нельзя прочитать; повторить её можно только из командной строки.", "This dead letter cannot be read; only the command line can retry it.";
    webhook_dead_letters_hint: "Вебхуки, которые пришли, но не могут быть использованы. Повторить их нельзя: они показаны для разбора.", "Webhooks that arrived but could not be used. They cannot be retried; they are listed for inspection.";
    working_hours: "Рабочее время", "Working hours";
    timezone: "Часовой пояс", "Time zone";
    hours_from: "С", "From";
    hours_to: "До", "To";
    working_days: "Рабочие дни", "Working days";
    hours_hint: "Заявки вне рабочего времени ждут открытия. Одинаковые «с» и «до» — круглосуточно.", "Leads outside working hours wait for the opening. The same start and end mean around the clock.";
    hours_invalid: "время указывается как ЧЧ:ММ", "times are written as HH:MM";
    mon: "Пн", "Mon";
    tue: "Вт", "Tue";
    wed: "Ср", "Wed";
    thu: "Чт", "Thu";
    fri: "Пт", "Fri";
    sat: "Сб", "Sat";
    sun: "Вс", "Sun";
    price_settings: "Цены", "Prices";
    margin_pct: "Наценка к рынку, %", "Margin on the market, %";
    round_to: "Округлять до, ₽", "Round to, ₽";
    mileage_low: "Лучший пробег до, км", "Best tier mileage up to, km";
    mileage_mid: "Средний пробег до, км", "Middle tier mileage up to, km";
    show_market_range: "Показывать рыночный диапазон", "Show the market range";
    price_note: "Строка к ответу о цене", "Line added to price replies";
    ai_estimate: "Оценка ИИ, если цен нет", "AI estimate when no prices are found";
    price_escalation: "Передавать оператору, если цен нет", "Hand over to an operator when no prices are found";
    templates: "Шаблоны ответов", "Reply templates";
    template_vars: "Подстановки", "Placeholders";
    preview: "Как увидит клиент", "What the customer sees";
    preview_refused: "Шаблон не принят:", "The template was not accepted:";
    tpl_price_result: "Диапазон цен", "Price range";
    tpl_price_options: "Три варианта по пробегу", "Three offers by mileage";
    tpl_not_found: "Цена не найдена", "Price not found";
    tpl_payment_options: "Способы оплаты", "Payment methods";
    err_lost_reason: "Укажите причину, почему заявка потеряна.", "Give a reason why the lead was lost.";
}
